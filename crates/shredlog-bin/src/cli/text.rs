//! `shredlog redact-text`.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use shredlog::pii::Detector;
use shredlog::{Options, REDACTED};

pub(crate) fn redact_text(options: &Options) -> Result<ExitCode> {
    let detector = Detector::new(&options.detector)?;
    let stdin = std::io::stdin().lock();
    let mut input = std::io::BufReader::with_capacity(1 << 16, stdin);
    let mut out = super::out::stdout();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .context("reading stdin")?;
        if n == 0 {
            break;
        }
        let newline = line.last() == Some(&b'\n');
        let body = if newline {
            &line[..line.len() - 1]
        } else {
            &line[..]
        };
        let (body, cr) = match body.strip_suffix(b"\r") {
            Some(b) => (b, true),
            None => (body, false),
        };
        let text = String::from_utf8_lossy(body);
        out.write_all(detector.redact(&text, REDACTED).as_bytes())
            .context("writing stdout")?;
        if cr {
            out.write_all(b"\r")?;
        }
        if newline {
            out.write_all(b"\n")?;
        }
        if out.closed() {
            // Nobody reads on: stop reading too.
            break;
        }
    }
    out.flush().context("writing stdout")?;
    Ok(ExitCode::SUCCESS)
}
