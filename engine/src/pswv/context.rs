//! Stage 0 state: what a block is checked against ([`ParentInfo`]) and the ancestry needed to
//! derive the next one (the last 11 timestamps for the median-time rule, the timestamps at
//! retarget heights for the bits rule, the seed epoch carried in [`ParentInfo::seed`]).

use std::collections::{BTreeMap, VecDeque};

use crate::block::{Block, BlockHeader};
use crate::consensus::{
    median_time_past, next_bits, next_seed, BLOCKS_PER_RETARGET, MEDIAN_TIME_BLOCKS,
};
use crate::validation::ParentInfo;

use super::WindowError;

/// The chain tip a window is validated against, able to advance header by header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainContext {
    parent: ParentInfo,
    /// The parent's timestamp and its ancestors', newest first, at most 11.
    timestamps: VecDeque<u64>,
    /// Timestamps of ancestors at multiples of 2016 (what `CalcNextBits` reads).
    retarget: BTreeMap<u64, u64>,
    /// Set when the retarget rule needed an ancestor timestamp that was not known: the next
    /// block cannot be checked.
    missing: Option<u64>,
}

impl ChainContext {
    /// A context from its parts: `recent_timestamps` are the parent's and its ancestors',
    /// newest first (the first 11 are kept); `retarget_timestamps` maps heights that are
    /// multiples of 2016 to their block's timestamp (needed when the window crosses one).
    pub fn new(
        parent: ParentInfo,
        recent_timestamps: &[u64],
        retarget_timestamps: BTreeMap<u64, u64>,
    ) -> Self {
        ChainContext {
            parent,
            timestamps: recent_timestamps
                .iter()
                .take(MEDIAN_TIME_BLOCKS)
                .copied()
                .collect(),
            retarget: retarget_timestamps,
            missing: None,
        }
    }

    /// The context whose tip is `genesis`.
    pub fn genesis(genesis: &Block) -> Self {
        let h = &genesis.header;
        let hash = genesis.hash();
        let parent = ParentInfo {
            height: h.height,
            hash,
            bits_expected: next_bits(h.height, h.timestamp, h.bits, h.timestamp),
            median_time: h.timestamp,
            seed: next_seed(h.height, &hash, &hash),
        };
        ChainContext::new(
            parent,
            &[h.timestamp],
            BTreeMap::from([(h.height, h.timestamp)]),
        )
    }

    /// What the next block is checked against.
    ///
    /// # Errors
    /// [`WindowError::MissingAncestor`] when the retarget rule needed a timestamp the context
    /// lacks.
    pub fn parent(&self) -> Result<&ParentInfo, WindowError> {
        match self.missing {
            Some(height) => Err(WindowError::MissingAncestor { height }),
            None => Ok(&self.parent),
        }
    }

    /// Makes `header` (a child of the current parent, whether valid or not) the new parent.
    /// If `header` is at a positive multiple of 2016 and the timestamp 2016 blocks back is
    /// unknown, [`ChainContext::parent`] reports it from now on.
    pub fn advance(&mut self, header: &BlockHeader) {
        let height = header.height;
        let ancestor = if height != 0 && height.is_multiple_of(BLOCKS_PER_RETARGET) {
            let at = height - BLOCKS_PER_RETARGET;
            match self.retarget.get(&at) {
                Some(t) => *t,
                None => {
                    self.missing.get_or_insert(at);
                    header.timestamp
                }
            }
        } else {
            header.timestamp
        };
        if height.is_multiple_of(BLOCKS_PER_RETARGET) {
            self.retarget.insert(height, header.timestamp);
        }
        self.timestamps.push_front(header.timestamp);
        self.timestamps.truncate(MEDIAN_TIME_BLOCKS);
        let (newest, oldest) = self.timestamps.as_slices();
        let recent: Vec<u64> = newest.iter().chain(oldest).copied().collect();
        let hash = header.hash();
        self.parent = ParentInfo {
            height,
            hash,
            bits_expected: next_bits(height, header.timestamp, header.bits, ancestor),
            median_time: median_time_past(&recent).unwrap_or(header.timestamp),
            seed: next_seed(height, &hash, &self.parent.seed),
        };
    }
}
