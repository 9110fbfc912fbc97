//! `BlockHeader::decode` on arbitrary bytes: whatever decodes must survive a re-encode unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    bystack_fuzz::check_header(data);
});
