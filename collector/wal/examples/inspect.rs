//! Prints the report of `magpie_wal::inspect` for a WAL directory.
//!
//! `cargo run -p magpie-wal --example inspect -- DIR`

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: inspect DIR");
        std::process::exit(2);
    };
    match magpie_wal::inspect(std::path::Path::new(&dir)) {
        Ok(report) => print!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
