//! The `bystack-node` binary.

use std::process::ExitCode;

use bystack_engine::Hash;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "bystack-node", version, about = "The bystack Bytom node")]
struct Cli {
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
            match bystack_node::decode::decode_hex(&hex, seed.as_ref()) {
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
    }
}
