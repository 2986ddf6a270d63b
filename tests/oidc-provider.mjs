// An OpenID Connect identity provider for the sign-in tests: the
// OpenID-certified `oidc-provider` (npm, installed by .ci/run under
// $DRUPPIE_CONTRACTS, default ~/.cache/druppie-contracts), on 127.0.0.1.
//
//   node tests/oidc-provider.mjs [--port N] [--client-id ID]
//        [--client-secret S] [--redirect-uri URL]... [--alg RS256|PS256|ES256|EdDSA]
//
// When it listens it prints one JSON line on stdout and keeps running
// until killed:
//   {"issuer": "http://127.0.0.1:PORT", "client_id": ..., "client_secret": ...,
//    "users": [{"login": "ana", "password": ..., "groups": [...]}, ...]}
// Its login page is a plain form (`login`, `password`, a "Sign in"
// button) that a browser or an HTTP client fills in; consent is granted
// at once. Every user has a `groups` claim (Keycloak-style: ana's group
// has a leading `/`), put in the ID token for the `openid` scope.

import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { pathToFileURL } from 'node:url';

const contracts = process.env.DRUPPIE_CONTRACTS || path.join(os.homedir(), '.cache/druppie-contracts');
const { default: Provider } = await import(
  pathToFileURL(path.join(contracts, 'node_modules/oidc-provider/lib/index.js')).href
);

const args = { port: '0', 'client-id': 'druppie', 'client-secret': 'druppie-it-client-secret', alg: 'RS256' };
const redirects = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (key === 'redirect-uri') redirects.push(argv[i + 1]);
  else args[key] = argv[i + 1];
}

/** Two teams and an admin; ana's group is a Keycloak group path. */
const USERS = {
  ana: { password: 'ana-password', groups: ['/team-permits'] },
  ben: { password: 'ben-password', groups: ['team-finance'] },
  ada: { password: 'ada-password', groups: ['platform-admins'] },
};

/** A signing key made now, as a private JWK. */
function signingKey(alg) {
  const [type, options] = {
    RS256: ['rsa', { modulusLength: 2048 }],
    PS256: ['rsa', { modulusLength: 2048 }],
    ES256: ['ec', { namedCurve: 'P-256' }],
    EdDSA: ['ed25519', {}],
  }[alg];
  const jwk = generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' });
  return { ...jwk, alg, use: 'sig', kid: `it-${alg.toLowerCase()}` };
}

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html lang="en"><head><title>Sign in</title></head><body><main>${body}</main></body></html>`);
}

function form(uid, error) {
  return `<h1>Sign in</h1>${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Username <input name="login" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

// A reader that went away is no reason to stop serving.
process.stdout.on('error', () => {});

const server = http.createServer();
server.listen(Number(args.port), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      redirect_uris: redirects.length ? redirects : ['http://127.0.0.1/auth/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: args.alg,
    }],
    jwks: { keys: [signingKey(args.alg)] },
    claims: { openid: ['sub', 'groups'] },
    // The groups go in the ID token, not only to the userinfo endpoint.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    cookies: { keys: ['druppie-it-cookie-key'] },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const user = USERS[sub];
      return user && { accountId: sub, claims: async () => ({ sub, groups: user.groups }) };
    },
    // First-party client: every scope it asks for is granted.
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
      await grant.save();
      return grant;
    },
  });
  const callback = provider.callback();
  server.on('request', async (req, res) => {
    const match = req.url.match(/^\/interaction\/([^/?]+)(\/login)?/);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET') return page(res, 200, form(details.uid));
      const { login, password } = await readForm(req);
      if (!USERS[login] || USERS[login].password !== password) {
        return page(res, 401, form(details.uid, 'Unknown user or wrong password.'));
      }
      await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    } catch (e) {
      page(res, 400, `<p>${escape(e.message)}</p>`);
    }
  });
  const users = Object.entries(USERS).map(([login, u]) => ({ login, password: u.password, groups: u.groups }));
  process.stdout.write(`${JSON.stringify({ issuer, client_id: args['client-id'], client_secret: args['client-secret'], users })}\n`);
});
