//! Plans split into shards by a stable hash of their name, so that
//! several replicas (or several `apply --shard` jobs) each take a part
//! of the platform and no plan is in two parts.

use std::collections::BTreeSet;
use std::fmt;

use sha2::{Digest, Sha256};

/// The shard of `plan` among `count`: the first eight bytes of the
/// SHA-256 of its name, big-endian, modulo `count`. The same on every
/// machine and in every version, so replicas agree without talking.
pub fn shard_of(plan: &str, count: u32) -> u32 {
    let digest = Sha256::digest(plan.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(head) % u64::from(count.max(1));
    u32::try_from(n).expect("less than a u32 count")
}

/// Some of `count` shards: the plans a run covers are those whose
/// [`shard_of`] is among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shards {
    count: u32,
    held: BTreeSet<u32>,
}

/// `--shard` text that is not `I/N` with `0 <= I < N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a shard like 0/4 (the shard's number, from 0, then how many there are)")]
pub struct ShardSyntax(String);

impl Shards {
    /// The shards `held` of `count` (numbers past `count` are dropped).
    pub fn new(count: u32, held: impl IntoIterator<Item = u32>) -> Shards {
        let count = count.max(1);
        Shards {
            count,
            held: held.into_iter().filter(|&s| s < count).collect(),
        }
    }

    /// Every shard of `count`: everything.
    pub fn all(count: u32) -> Shards {
        Shards::new(count, 0..count.max(1))
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn held(&self) -> &BTreeSet<u32> {
        &self.held
    }

    /// Whether `plan` is in one of these shards.
    pub fn owns(&self, plan: &str) -> bool {
        self.held.contains(&shard_of(plan, self.count))
    }

    /// Whether these are all the shards there are.
    pub fn is_all(&self) -> bool {
        self.held.len() == self.count as usize
    }
}

impl std::str::FromStr for Shards {
    type Err = ShardSyntax;

    /// `I/N`: shard `I` of `N`.
    fn from_str(text: &str) -> Result<Shards, ShardSyntax> {
        let bad = || ShardSyntax(text.to_owned());
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let (i, n): (u32, u32) = (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if n == 0 || i >= n {
            return Err(bad());
        }
        Ok(Shards::new(n, [i]))
    }
}

impl fmt::Display for Shards {
    /// `0,2/4`: the shards held, then how many there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let held: Vec<String> = self.held.iter().map(u32::to_string).collect();
        write!(f, "{}/{}", held.join(","), self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plans_shard_is_fixed_by_its_name() {
        // Fixed values, computed by Python's hashlib: a change of hash
        // would move plans to other replicas at an upgrade.
        assert_eq!(shard_of("permits", 4), shard_of("permits", 4));
        let counts: Vec<u32> = ["permits", "payments", "portal", "a", ""]
            .iter()
            .map(|p| shard_of(p, 1_000_003))
            .collect();
        assert_eq!(counts, [197_324, 234_033, 702_107, 441_830, 224_200]);
        assert_eq!(shard_of("permits", 1), 0);
    }

    #[test]
    fn shards_split_many_plans_about_evenly_and_each_plan_once() {
        let plans: Vec<String> = (0..4000).map(|i| format!("plan-{i:05}")).collect();
        let parts: Vec<Shards> = (0..4).map(|i| Shards::new(4, [i])).collect();
        let mut sizes = [0usize; 4];
        for plan in &plans {
            let owners: Vec<usize> = (0..4).filter(|&i| parts[i].owns(plan)).collect();
            assert_eq!(owners.len(), 1, "{plan} is in exactly one shard");
            sizes[owners[0]] += 1;
        }
        for size in sizes {
            assert!((900..1100).contains(&size), "{sizes:?}");
        }
    }

    #[test]
    fn shard_text_reads_as_number_over_count() {
        let s: Shards = "1/4".parse().expect("valid");
        assert_eq!(
            (s.count(), s.held().iter().copied().collect::<Vec<_>>()),
            (4, vec![1])
        );
        assert_eq!(s.to_string(), "1/4");
        for bad in ["4/4", "1", "a/4", "1/0", "-1/4", "1/4/2"] {
            assert!(bad.parse::<Shards>().is_err(), "{bad}");
        }
        assert!(Shards::all(3).is_all());
        assert!(!Shards::new(3, [0, 2]).is_all());
        assert_eq!(Shards::new(3, [0, 2, 7]).to_string(), "0,2/3");
    }
}
