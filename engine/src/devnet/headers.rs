//! A linked header chain with the parent facts validation needs ([`ParentInfo`]): bits by the
//! retarget rule, median time past of 11 blocks, and the seed epoch of every block.

use crate::block::BlockHeader;
use crate::consensus::{initial_seed, median_time_past, next_bits, next_seed, MEDIAN_TIME_BLOCKS};
use crate::hash::Hash;
use crate::validation::ParentInfo;

/// Headers from genesis (height 0) to the tip, with their hashes and the seed each one was
/// mined against.
#[derive(Debug, Clone)]
pub struct HeaderChain {
    headers: Vec<BlockHeader>,
    hashes: Vec<Hash>,
    seeds: Vec<Hash>,
}

impl HeaderChain {
    /// A chain holding only `genesis` (whose seed is the initial seed).
    pub fn new(genesis: &BlockHeader) -> HeaderChain {
        HeaderChain {
            headers: vec![genesis.clone()],
            hashes: vec![genesis.hash()],
            seeds: vec![initial_seed()],
        }
    }

    /// The tip's height.
    pub fn tip_height(&self) -> u64 {
        (self.headers.len() - 1) as u64
    }

    /// The tip's header.
    pub fn tip(&self) -> &BlockHeader {
        // Never empty: `new` holds the genesis.
        &self.headers[self.headers.len() - 1]
    }

    /// The header at `height`, if held.
    pub fn header(&self, height: u64) -> Option<&BlockHeader> {
        self.headers.get(height as usize)
    }

    /// The hash of the block at `height`, if held.
    pub fn hash(&self, height: u64) -> Option<Hash> {
        self.hashes.get(height as usize).copied()
    }

    /// The seed the block at `height` is mined against, if held.
    pub fn seed(&self, height: u64) -> Option<Hash> {
        self.seeds.get(height as usize).copied()
    }

    /// The facts a child of the block at `height` is checked against, if held.
    pub fn parent_info(&self, height: u64) -> Option<ParentInfo> {
        let h = height as usize;
        let parent = self.headers.get(h)?;
        let ancestor = h
            .checked_sub(crate::consensus::BLOCKS_PER_RETARGET as usize)
            .map_or(0, |a| self.headers[a].timestamp);
        let first = (h + 1).saturating_sub(MEDIAN_TIME_BLOCKS);
        let times: Vec<u64> = self.headers[first..=h]
            .iter()
            .rev()
            .map(|x| x.timestamp)
            .collect();
        Some(ParentInfo {
            height,
            hash: self.hashes[h],
            bits_expected: next_bits(height, parent.timestamp, parent.bits, ancestor),
            median_time: median_time_past(&times).unwrap_or(0),
            seed: next_seed(height, &self.hashes[h], &self.seeds[h]),
        })
    }

    /// The facts the tip's child is checked against.
    pub fn tip_info(&self) -> ParentInfo {
        // The tip is always held.
        self.parent_info(self.tip_height())
            .expect("the tip is in the chain")
    }

    /// Appends `header` as the new tip. It is not checked: a header chain built by the
    /// generator may hold invalid blocks, which only validation finds.
    pub fn push(&mut self, header: BlockHeader) {
        let seed = self.tip_info().seed;
        self.hashes.push(header.hash());
        self.seeds.push(seed);
        self.headers.push(header);
    }
}
