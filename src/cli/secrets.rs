//! The secrets druppie.toml names, read from the process environment
//! here (the library reads none), and the scrubber that keeps every one
//! of them out of what druppie prints, logs, serves and posts.

use super::Env;
use crate::config::Config;
use crate::secret::{Scrubber, Secret};

/// A variable that holds a secret: unset, set but empty, or set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    Unset,
    /// Set to nothing: a mistake (a Secret mounted empty), not a choice.
    Empty {
        name: String,
    },
    Set(Secret),
}

impl Var {
    fn read(env: &Env, name: &str) -> Var {
        match (env.var)(name) {
            None => Var::Unset,
            Some(v) if v.is_empty() => Var::Empty {
                name: name.to_owned(),
            },
            Some(v) => Var::Set(Secret::new(v)),
        }
    }

    /// The secret, when one is set.
    pub fn secret(&self) -> Option<&Secret> {
        match self {
            Var::Set(s) => Some(s),
            Var::Unset | Var::Empty { .. } => None,
        }
    }
}

/// Every secret the configuration names.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// `[forge] token_env`.
    pub forge_token: Var,
    /// `[server] webhook_secret_env`.
    pub webhook: Var,
    /// `[server] api_token_env`.
    pub api_token: Var,
    /// `[llm] api_key_env`.
    pub llm_key: Var,
    /// `[server.auth] client_secret_env`.
    pub oidc_client_secret: Var,
    /// `[server.auth] session_secret_env`.
    pub session_secret: Var,
    /// Each `[[notify]]` sink's `url_env`, in the file's order.
    pub notify: Vec<Var>,
}

impl Secrets {
    pub fn read(config: &Config, env: &Env) -> Secrets {
        let auth = config.server.auth.as_ref();
        Secrets {
            forge_token: Var::read(env, &config.forge.token_env),
            webhook: Var::read(env, &config.server.webhook_secret_env),
            api_token: Var::read(env, &config.server.api_token_env),
            llm_key: config
                .llm
                .as_ref()
                .map_or(Var::Unset, |l| Var::read(env, &l.api_key_env)),
            oidc_client_secret: auth.map_or(Var::Unset, |a| Var::read(env, &a.client_secret_env)),
            session_secret: auth.map_or(Var::Unset, |a| Var::read(env, &a.session_secret_env)),
            notify: config
                .notify
                .iter()
                .map(|n| Var::read(env, &n.url_env))
                .collect(),
        }
    }

    /// Adds to `scrubber` every secret set, the password of every URL in
    /// the configuration, and the lines of the signing key's file.
    pub fn scrub_with(&self, config: &Config, scrubber: &Scrubber) {
        for var in [
            &self.forge_token,
            &self.webhook,
            &self.api_token,
            &self.llm_key,
            &self.oidc_client_secret,
            &self.session_secret,
        ] {
            if let Some(s) = var.secret() {
                scrubber.add(s);
            }
        }
        // A sink's URL is its credential: all of it, its path and its
        // password.
        for url in self.notify.iter().filter_map(Var::secret) {
            for part in crate::daemon::notify::secret_parts(url) {
                scrubber.add(&part);
            }
        }
        let urls = [
            config.spec.url.as_deref(),
            config.forge.base.as_deref(),
            config.forge.git_url.as_deref(),
            config.llm.as_ref().map(|l| l.base_url.as_str()),
        ];
        for url in urls.into_iter().flatten() {
            scrubber.add_url(url);
        }
        // The key is read by the signer; should its text ever reach a
        // message, no line of it gets out. Short lines (the armour) are
        // not secret.
        if let Some(key) = &config.signing.key
            && let Ok(text) = std::fs::read_to_string(config.resolve(key))
        {
            for line in text.lines().map(str::trim) {
                if line.len() >= 16 && !line.starts_with("-----") {
                    scrubber.add_plain(line);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(var: fn(&str) -> Option<String>) -> Env {
        Env {
            cwd: ".".into(),
            no_color: true,
            stdout_tty: false,
            stderr_tty: false,
            var,
            scrubber: Scrubber::new(),
        }
    }

    #[test]
    fn an_empty_variable_is_told_apart_from_an_unset_one() {
        let config = Config::default();
        let secrets = Secrets::read(
            &config,
            &env(|name| match name {
                "DRUPPIE_FORGE_TOKEN" => Some("tok-123456".into()),
                "DRUPPIE_WEBHOOK_SECRET" => Some(String::new()),
                _ => None,
            }),
        );
        assert_eq!(secrets.forge_token, Var::Set(Secret::new("tok-123456")));
        assert_eq!(
            secrets.webhook,
            Var::Empty {
                name: "DRUPPIE_WEBHOOK_SECRET".into()
            }
        );
        assert_eq!(secrets.llm_key, Var::Unset);
    }

    #[test]
    fn the_sign_in_secrets_are_read_only_with_server_auth_and_scrubbed() {
        let unset = Secrets::read(
            &Config::default(),
            &env(|_| Some("set-but-unused-1".into())),
        );
        assert_eq!(unset.oidc_client_secret, Var::Unset);
        let mut config = Config::default();
        config.server.auth = Some(
            toml::from_str(
                "issuer = \"https://id.example.org\"\nclient_id = \"druppie\"\nredirect_url = \"https://d.example.org/auth/callback\"\n",
            )
            .expect("[server.auth]"),
        );
        let secrets = Secrets::read(
            &config,
            &env(|name| match name {
                "DRUPPIE_OIDC_CLIENT_SECRET" => Some("client-secret-42".into()),
                "DRUPPIE_SESSION_SECRET" => Some("session-secret-0123456789abcdef0123".into()),
                _ => None,
            }),
        );
        let scrubber = Scrubber::new();
        secrets.scrub_with(&config, &scrubber);
        assert_eq!(
            scrubber.scrub("client-secret-42 session-secret-0123456789abcdef0123"),
            "*** ***"
        );
    }

    #[test]
    fn a_sink_url_is_scrubbed_whole_and_by_its_path() {
        let config = Config {
            notify: vec![
                toml::from_str("name = \"slack\"\nurl_env = \"SLACK_URL\"\n").expect("a sink"),
            ],
            ..Config::default()
        };
        let secrets = Secrets::read(
            &config,
            &env(|name| {
                (name == "SLACK_URL")
                    .then(|| "https://hooks.slack.com/services/T01/B02/xoxb-secret-77".into())
            }),
        );
        let scrubber = Scrubber::new();
        secrets.scrub_with(&config, &scrubber);
        assert_eq!(
            scrubber.scrub("POST https://hooks.slack.com/services/T01/B02/xoxb-secret-77 failed; path /services/T01/B02/xoxb-secret-77"),
            "POST *** failed; path ***"
        );
    }

    #[test]
    fn every_configured_secret_and_url_password_is_scrubbed() {
        let mut config = Config::default();
        config.spec.url = Some("https://bot:url-pass-987@git.example.org/p/spec.git".into());
        let secrets = Secrets::read(
            &config,
            &env(|name| match name {
                "DRUPPIE_FORGE_TOKEN" => Some("tok-123456".into()),
                "DRUPPIE_WEBHOOK_SECRET" => Some("hook-secret-1".into()),
                _ => None,
            }),
        );
        let scrubber = Scrubber::new();
        secrets.scrub_with(&config, &scrubber);
        assert_eq!(
            scrubber.scrub("tok-123456 hook-secret-1 url-pass-987 fine"),
            "*** *** *** fine"
        );
    }
}
