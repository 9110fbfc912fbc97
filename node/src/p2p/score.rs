//! Peer scores and temporary bans.
//!
//! Every misbehaviour adds its weight to the peer's score; a peer whose score reaches
//! [`DISCONNECT_SCORE`] is disconnected and banned for the configured time. Consensus
//! violations (an invalid block: bad proof of work, merkle root, double spend…) and another
//! genesis weigh [`DISCONNECT_SCORE`] on their own; lesser faults add up. Scores decay, so an
//! honest peer's occasional stale answer is forgotten.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// The score at which a peer is disconnected and banned.
pub const DISCONNECT_SCORE: u32 = 100;
/// Points forgiven per minute of good behaviour.
const DECAY_PER_MINUTE: u32 = 10;

/// What a peer did wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// It relayed or served a block that fails validation (proof of work, merkle roots,
    /// double spends, coinbase…), or one built on such a block.
    InvalidBlock,
    /// It announced another genesis.
    WrongGenesis,
    /// A message that does not decode, or a response of the wrong kind.
    Malformed,
    /// Headers that do not link, or blocks that do not match the headers it sent.
    BrokenChain,
    /// It relayed a transaction that the mempool refused as invalid.
    InvalidTransaction,
    /// It announced a chain it then failed to serve.
    Unresponsive,
}

impl Misbehaviour {
    /// The points this misbehaviour adds.
    pub fn weight(self) -> u32 {
        match self {
            Misbehaviour::InvalidBlock | Misbehaviour::WrongGenesis => DISCONNECT_SCORE,
            Misbehaviour::Malformed | Misbehaviour::BrokenChain => 50,
            Misbehaviour::Unresponsive => 25,
            Misbehaviour::InvalidTransaction => 10,
        }
    }
}

/// What became of a peer after a penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Still welcome, with this score.
    Keep(u32),
    /// Disconnect it: banned until the given instant.
    Ban(Instant),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    score: u32,
    updated: Instant,
}

/// Scores of connected peers and the bans in force.
#[derive(Debug)]
pub struct PeerScores {
    ban_duration: Duration,
    scores: HashMap<PeerId, Entry>,
    bans: HashMap<PeerId, Instant>,
}

impl PeerScores {
    /// No scores, no bans; a ban lasts `ban_duration`.
    pub fn new(ban_duration: Duration) -> Self {
        PeerScores {
            ban_duration,
            scores: HashMap::new(),
            bans: HashMap::new(),
        }
    }

    /// Adds `what`'s weight to `peer`'s score (after decay) at `now`.
    pub fn penalise(&mut self, peer: PeerId, what: Misbehaviour, now: Instant) -> Verdict {
        let entry = self.scores.entry(peer).or_insert(Entry {
            score: 0,
            updated: now,
        });
        let minutes = now.saturating_duration_since(entry.updated).as_secs() / 60;
        let forgiven = u32::try_from(minutes)
            .unwrap_or(u32::MAX)
            .saturating_mul(DECAY_PER_MINUTE);
        entry.score = entry.score.saturating_sub(forgiven);
        if forgiven > 0 {
            entry.updated = now;
        }
        entry.score = entry.score.saturating_add(what.weight());
        if entry.score < DISCONNECT_SCORE {
            return Verdict::Keep(entry.score);
        }
        self.scores.remove(&peer);
        let until = now + self.ban_duration;
        self.bans.insert(peer, until);
        Verdict::Ban(until)
    }

    /// `peer`'s current score (0 when unknown).
    pub fn score(&self, peer: &PeerId) -> u32 {
        self.scores.get(peer).map_or(0, |e| e.score)
    }

    /// Whether `peer` is banned at `now`.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.bans.get(peer).is_some_and(|&until| until > now)
    }

    /// Forgets the bans that ended by `now` and returns their peers.
    pub fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let ended: Vec<PeerId> = self
            .bans
            .iter()
            .filter(|(_, &until)| until <= now)
            .map(|(&peer, _)| peer)
            .collect();
        for peer in &ended {
            self.bans.remove(peer);
        }
        ended
    }

    /// Forgets a disconnected peer's score (its ban, if any, stays).
    pub fn forget(&mut self, peer: &PeerId) {
        self.scores.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_block_bans_at_once() {
        let mut scores = PeerScores::new(Duration::from_secs(60));
        let peer = PeerId::random();
        let now = Instant::now();
        assert_eq!(
            scores.penalise(peer, Misbehaviour::InvalidBlock, now),
            Verdict::Ban(now + Duration::from_secs(60))
        );
        assert!(scores.is_banned(&peer, now));
        assert!(!scores.is_banned(&peer, now + Duration::from_secs(61)));
        assert_eq!(scores.expire_bans(now + Duration::from_secs(30)), vec![]);
        assert_eq!(
            scores.expire_bans(now + Duration::from_secs(60)),
            vec![peer]
        );
        assert!(!scores.is_banned(&peer, now));
    }

    #[test]
    fn lesser_faults_add_up_and_decay() {
        let mut scores = PeerScores::new(Duration::from_secs(60));
        let peer = PeerId::random();
        let now = Instant::now();
        assert_eq!(
            scores.penalise(peer, Misbehaviour::Malformed, now),
            Verdict::Keep(50)
        );
        // Five minutes later 50 points are forgiven.
        let later = now + Duration::from_secs(300);
        assert_eq!(
            scores.penalise(peer, Misbehaviour::Malformed, later),
            Verdict::Keep(50)
        );
        assert!(matches!(
            scores.penalise(peer, Misbehaviour::Malformed, later),
            Verdict::Ban(_)
        ));
        assert_eq!(scores.score(&peer), 0);
        assert!(scores.is_banned(&peer, later));
    }
}
