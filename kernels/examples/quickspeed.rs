use bystack_kernels::tensority::cpu::{CpuKernel, KernelSeed};
use std::time::Instant;
fn main() {
    let seed = [3u8; 32];
    let t = Instant::now();
    let _m = bystack_kernels::tensority::seed::MatrixSet::build(&seed);
    println!("seed build {:?}", t.elapsed());
    for k in CpuKernel::ALL {
        if !k.is_supported() || k == CpuKernel::Reference {
            continue;
        }
        let ks = KernelSeed::new(k, &seed).unwrap();
        ks.hash(&[0; 32]);
        let n = 10;
        let t = Instant::now();
        for i in 0..n {
            ks.hash(&[i as u8; 32]);
        }
        let s = t.elapsed().as_secs_f64() / n as f64;
        println!("{}: {:.4} s/hash = {:.2} H/s", k.name(), s, 1.0 / s);
    }
}
