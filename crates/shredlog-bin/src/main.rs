//! The `shredlog` command (DESIGN §5).

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    match shredlog_bin::run() {
        Ok(code) => code,
        Err(err) => {
            // One clear sentence (with its causes) naming what was wrong.
            let mut msg = format!("shredlog: error: {err}");
            for cause in err.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            eprintln!("{msg}");
            std::process::ExitCode::FAILURE
        }
    }
}
