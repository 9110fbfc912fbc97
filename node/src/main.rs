//! The `bystack-node` binary.

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use bystack_engine::validation::TensorityPow;
use bystack_engine::Hash;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bystack-node", version, about = "The bystack Bytom node")]
struct Cli {
    /// Tensority backend for proof-of-work checks: auto, reference, cpu, float, wgpu, cuda, …
    /// A device backend's failing results are re-checked on the CPU.
    #[arg(long, global = true, value_name = "NAME", default_value = "auto")]
    pow_backend: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decodes a serialized block header, block or transaction (hex; the first byte, the
    /// serflag, decides) and prints one JSON object with its fields and computed IDs.
    Decode {
        /// PoW seed (64 hex characters): adds the Tensority result and verdict for headers and
        /// blocks.
        #[arg(long, value_name = "SEED_HEX")]
        seed: Option<String>,
        /// The serialized structure, in hex.
        #[arg(value_name = "HEX")]
        hex: String,
    },
    /// Reads `BLOCK_HEX SEED_HEX` lines from stdin (serialized blocks or headers), verifies
    /// every proof of work in one batch and prints one JSON line per block. Exits 0 if all
    /// are valid, 1 if any is invalid, 2 on bad input.
    VerifyPow {
        /// Worker threads of the backend (0 = one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Decode { seed, hex } => {
            let seed = match seed.as_deref().map(Hash::from_hex).transpose() {
                Ok(seed) => seed,
                Err(e) => {
                    eprintln!("error: --seed: {e}");
                    return ExitCode::from(2);
                }
            };
            match bystack_node::decode::decode_hex_with_backend(
                &hex,
                seed.as_ref(),
                &cli.pow_backend,
            ) {
                Ok(value) => {
                    println!("{value}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::VerifyPow { threads } => verify_pow(&cli.pow_backend, threads),
    }
}

fn verify_pow(backend: &str, threads: usize) -> ExitCode {
    use bystack_node::verify;
    if io::stdin().is_terminal() {
        eprintln!("reading `BLOCK_HEX SEED_HEX` lines from stdin (Ctrl-D ends)");
    }
    let requests = match verify::read_requests(io::stdin().lock()) {
        Ok(requests) => requests,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let pow = match TensorityPow::open(backend, threads) {
        Ok(pow) => pow,
        Err(e) => {
            eprintln!("error: --pow-backend {backend}: {e}");
            return ExitCode::from(2);
        }
    };
    let verdicts = match verify::verify(&requests, &pow) {
        Ok(verdicts) => verdicts,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    for v in &verdicts {
        println!("{}", v.to_json());
    }
    if verdicts.iter().all(|v| v.valid) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
