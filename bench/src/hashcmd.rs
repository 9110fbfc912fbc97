//! `bystack-bench hash`: reads `HEADER_HASH_HEX SEED_HEX` lines and prints
//! `HEADER_HASH_HEX SEED_HEX RESULT_HEX` for each, in order.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::Arc;

use bystack_kernels::hex::{self, HexError};
use bystack_kernels::{PreparedSeed, TensorityBackend};
use thiserror::Error;

/// Why the `hash` command stopped.
#[derive(Debug, Error)]
pub enum HashCommandError {
    /// A line is not two 64-character hex fields.
    #[error("line {line}: {reason}")]
    Input {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading stdin or writing stdout failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] bystack_kernels::backend::BackendError),
}

fn field(line: usize, name: &str, text: &str) -> Result<[u8; 32], HashCommandError> {
    hex::decode32(text).map_err(|e| HashCommandError::Input {
        line,
        reason: match e {
            HexError::Length { got, .. } => {
                format!("{name} must be 64 hex characters (32 bytes), got {got}")
            }
            other => format!("{name}: {other}"),
        },
    })
}

/// Parses one input line into (header hash, seed).
///
/// # Errors
/// [`HashCommandError::Input`] for empty lines, a wrong field count, or bad hex.
pub fn parse_line(line_no: usize, line: &str) -> Result<([u8; 32], [u8; 32]), HashCommandError> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    match fields.as_slice() {
        [header, seed] => Ok((
            field(line_no, "header hash", header)?,
            field(line_no, "seed", seed)?,
        )),
        [] => Err(HashCommandError::Input {
            line: line_no,
            reason: "empty line".into(),
        }),
        other => Err(HashCommandError::Input {
            line: line_no,
            reason: format!(
                "expected 2 fields `HEADER_HASH_HEX SEED_HEX`, got {}",
                other.len()
            ),
        }),
    }
}

/// Runs the command over `input`, writing one result line per input line to `output`. Stops at
/// the first bad line, after writing the results of every good line before it.
///
/// # Errors
/// The first bad line, or an I/O or backend failure.
pub fn run(
    backend: &dyn TensorityBackend,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<usize, HashCommandError> {
    // Prepared seeds stay alive while lines keep using them; a few seeds at most.
    let mut prepared: HashMap<[u8; 32], Arc<dyn PreparedSeed>> = HashMap::new();
    let mut count = 0;
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        let (header, seed) = parse_line(i + 1, &line)?;
        if !prepared.contains_key(&seed) && prepared.len() >= 4 {
            prepared.clear();
        }
        let p = match prepared.get(&seed) {
            Some(p) => Arc::clone(p),
            None => {
                let p = backend.prepare(&seed)?;
                prepared.insert(seed, Arc::clone(&p));
                p
            }
        };
        let result = p.hash(&header)?;
        writeln!(
            output,
            "{} {} {}",
            hex::encode(&header),
            hex::encode(&seed),
            hex::encode(&result)
        )?;
        count += 1;
    }
    output.flush()?;
    Ok(count)
}
