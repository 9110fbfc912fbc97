//! The correctness checksum every Tensority figure carries: a backend hashes a fixed set of
//! real-chain vectors (the 12 unique `(header hash, seed) → result` triples of Bytom's
//! Tensority tests, also in `shared/vectors/tensority.json`), and the SHA3-256 of its results
//! must equal the SHA3-256 of the expected ones. A fast wrong answer is a failure.

use std::collections::BTreeMap;

use bystack_kernels::tensority::sha3_256;
use bystack_kernels::{hex, TensorityBackend};
use serde::{Deserialize, Serialize};

/// `(header hash, seed, expected result)`, hex, raw byte order.
pub const VECTORS: [(&str, &str, &str); 12] = [
    (
        "d0dad73fb2dabf3353fda15571b4e5f6ac62ff187b354fadd4840d9ff2f1afdf",
        "0737520781345b11b7bd0f843c1bdd9aea81b6da94fd141cc9f2df53ac6744d2",
        "e35da54795d82f8549c0e580cbf2e3757ab5ef8fed1bdbe439416c7e6f8df227",
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "48dda5bbe9171a6656206ec56c595c5834b6cf38c5fe71bcb44fe43833aee9df",
        "26db94efa422d76c402a54eeb61dd5f53282cd3ce1a0ac677e177051edaa98c1",
    ),
    (
        "8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92",
        "0e3b78d8380844b0f697bb912da7f4d210382c6714194fd16039ef2acd924dcf",
        "fecec33669737592f7754b215b20bacefba64d2e4ca1656f85ea1d3dbe162839",
    ),
    (
        "2f014311e0926fa8b3d6e6de2051bf69332123baadfe522b62f4645655859e7a",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "c1c3cf4c76968e2967f0053c76f2084cc01ed0fe9766428db99c45bedf0cdbe2",
    ),
    (
        "e0e3c43178a126d04871b9c5d0c642e5e08b9679a5f66b821bd9a030eff02ce7",
        "6ab21e1301f5752c2fca1b5598f49d3769482e073c1f26e3b8365f405553ea31",
        "abbc2cb39638f684235fbc1b3ff107945948c581b6929bae2cd681889ff2d824",
    ),
    (
        "886a8e85b275e7d65b569ba510875c0e63dece1a94569914d7624c0dac8002f9",
        "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e",
        "6a1f276cac6f9e8b426eab46b533f82e82a148c03fb0a86934a8e5483b39da5e",
    ),
    (
        "2f86fe508faa7d68692a2089271b6901385d9058cd47e84fb402b5085f9a8360",
        "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e",
        "81756fdab39a17163b0ce582ee4ee256fb4d1e156c692b997d608a42ecb38d47",
    ),
    (
        "fe9791d71b67ee62515e08723c061b5ccb952a80d804417c8aeedf7f633c524a",
        "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e",
        "fad5195a0c8e3b590b86a3c0a95e7529565888508aecca96e9aeda633002f409",
    ),
    (
        "ef306787a087c118fcb6d351f0199dca98055898e208fbf1a934c9d70b58ee4b",
        "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e",
        "ffb0cadab314673d228f8fe74d84a4652e01c82c2641d3e2fa9148afeab0d606",
    ),
    (
        "10d2f1b2f48e389c97dde1b1a63bcd743c2340935d71e2c358ba10e584696143",
        "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e",
        "6add5af18253d0722c542f7e71f47d9cb1a4d7fb7c7d26aefe3c831cb854f17e",
    ),
    (
        "a75483474799ea1aa6bb910a1a5025b4372bf20bef20f246a2c2dc5e12e8a053",
        "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e",
        "3a9d805453ab6d5304b933764d29066e8cf963abf04718cc81fecd6278000000",
    ),
    (
        "ce4fe9431cd0225b3a811f8f8ec922f2b07a921bb12a8dddae9a85540072c770",
        "9e6291970cb44dd94008c79bcaf9d86f18b4b49ba5b2a04781db7199ed3b9e4e",
        "7a6d0a2b5e311e6439d839fcdf9260115dabbe41defc57c696993612c4a91c26",
    ),
];

/// One backend's checksum over [`VECTORS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    /// SHA3-256 (hex) of the backend's 12 results, concatenated in vector order.
    pub value: String,
    /// SHA3-256 (hex) of the expected results.
    pub expected: String,
    /// Vectors whose result matched.
    pub matched: usize,
    /// Vectors hashed.
    pub vectors: usize,
    /// Whether every result matched.
    pub ok: bool,
}

/// The checksum a correct backend produces.
pub fn expected() -> String {
    let mut all = Vec::with_capacity(32 * VECTORS.len());
    for (_, _, result) in VECTORS {
        all.extend_from_slice(&decode(result));
    }
    hex::encode(&sha3_256(&all))
}

fn decode(s: &str) -> [u8; 32] {
    // The table above is 64-digit hex; a typo there fails `vectors_decode` in the tests.
    hex::decode32(s).unwrap_or([0; 32])
}

/// Hashes [`VECTORS`] with `backend`, one prepared seed and one batch per distinct seed.
///
/// # Errors
/// A backend failure (a wrong result is not an error: it shows in [`Checksum::ok`]).
pub fn compute(backend: &dyn TensorityBackend) -> anyhow::Result<Checksum> {
    let mut by_seed: BTreeMap<[u8; 32], Vec<usize>> = BTreeMap::new();
    for (i, (_, seed, _)) in VECTORS.iter().enumerate() {
        by_seed.entry(decode(seed)).or_default().push(i);
    }
    let mut results = vec![[0u8; 32]; VECTORS.len()];
    for (seed, indices) in &by_seed {
        let prepared = backend.prepare(seed)?;
        let headers: Vec<[u8; 32]> = indices.iter().map(|&i| decode(VECTORS[i].0)).collect();
        let hashed = prepared.hash_batch(&headers)?;
        anyhow::ensure!(
            hashed.len() == headers.len(),
            "hash_batch returned {} results for {} headers",
            hashed.len(),
            headers.len()
        );
        for (&i, result) in indices.iter().zip(hashed) {
            results[i] = result;
        }
    }
    let matched = results
        .iter()
        .zip(VECTORS)
        .filter(|(got, (_, _, want))| **got == decode(want))
        .count();
    let value = hex::encode(&sha3_256(&results.concat()));
    let expected = expected();
    Ok(Checksum {
        ok: value == expected && matched == VECTORS.len(),
        value,
        expected,
        matched,
        vectors: VECTORS.len(),
    })
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use bystack_kernels::backend::{BackendInfo, PreparedSeed, SearchOutcome};
    use bystack_kernels::pow::{HeaderTemplate, Target};

    use super::*;

    #[test]
    fn vectors_decode() {
        for (header, seed, result) in VECTORS {
            for h in [header, seed, result] {
                assert!(hex::decode32(h).is_ok(), "{h}");
            }
        }
    }

    #[test]
    fn the_best_cpu_kernel_passes_and_a_wrong_backend_fails() {
        let backend = bystack_kernels::open_backend("auto", 1).unwrap();
        let sum = compute(backend.as_ref()).unwrap();
        assert!(sum.ok, "{sum:?}");
        assert_eq!(sum.matched, 12);
        assert_eq!(sum.value, expected());

        // A backend that is wrong on one header of one seed fails, and says how many matched.
        let liar = OneWrongResult {
            inner: bystack_kernels::open_backend("auto", 1).unwrap(),
        };
        let sum = compute(&liar).unwrap();
        assert!(!sum.ok);
        assert_eq!(sum.matched, 11);
        assert_ne!(sum.value, sum.expected);
    }

    /// A real backend whose result for the all-zero header hash has one bit flipped.
    struct OneWrongResult {
        inner: Box<dyn TensorityBackend>,
    }

    struct OneWrongSeed(Arc<dyn PreparedSeed>);

    impl TensorityBackend for OneWrongResult {
        fn info(&self) -> BackendInfo {
            self.inner.info()
        }

        fn prepare(
            &self,
            seed: &[u8; 32],
        ) -> bystack_kernels::backend::Result<Arc<dyn PreparedSeed>> {
            Ok(Arc::new(OneWrongSeed(self.inner.prepare(seed)?)))
        }
    }

    impl PreparedSeed for OneWrongSeed {
        fn seed(&self) -> &[u8; 32] {
            self.0.seed()
        }

        fn hash(&self, header_hash: &[u8; 32]) -> bystack_kernels::backend::Result<[u8; 32]> {
            let mut result = self.0.hash(header_hash)?;
            if *header_hash == [0; 32] {
                result[31] ^= 0x80;
            }
            Ok(result)
        }

        fn search(
            &self,
            template: &HeaderTemplate,
            nonces: Range<u64>,
            target: &Target,
            stop: &AtomicBool,
        ) -> bystack_kernels::backend::Result<SearchOutcome> {
            self.0.search(template, nonces, target, stop)
        }
    }
}
