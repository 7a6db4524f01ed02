//! Privacy subcommands: redact, delete, retention, consent, hold, restrict, audit.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use shredlog::{HoldTarget, Store, Timestamp};

#[derive(Args, Debug)]
pub(crate) struct RedactArgs {
    /// The visitor's email (any letter case).
    #[arg(long)]
    email: String,
    /// Your reference for the audit log (e.g. a ticket number). Must not contain personal data.
    #[arg(long, default_value = "")]
    reference: String,
    /// Say what the erasure would do (as JSON), change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Args, Debug)]
pub(crate) struct ReapplyArgs {
    /// Your reference for the audit log (e.g. a ticket number). Must not contain personal data.
    #[arg(long, default_value = "")]
    reference: String,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct Target {
    /// Everything of the visitor with this email.
    #[arg(long)]
    email: Option<String>,
    /// One transcript.
    #[arg(long)]
    transcript: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct DeleteArgs {
    #[command(flatten)]
    target: Target,
    /// Your reference for the audit log.
    #[arg(long, default_value = "")]
    reference: String,
    /// Say what the deletion would do (as JSON), change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RetentionArgs {
    /// Transcripts whose latest message is older than this: e.g. `90d`, `12h`,
    /// `30m`, `45s`, `2w`.
    #[arg(long, value_parser = parse_duration_ms)]
    older_than: i64,
    /// Delete instead of redact.
    #[arg(long)]
    delete: bool,
    /// Your reference for the audit log.
    #[arg(long, default_value = "retention")]
    reference: String,
    /// Say what the run would do (as JSON), change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Confirm a period of 0: every transcript not on hold is acted on now.
    #[arg(long)]
    confirm_zero: bool,
}

#[derive(Args, Debug)]
pub(crate) struct HoldArgs {
    #[command(flatten)]
    target: Target,
    /// Release the hold instead of placing it.
    #[arg(long)]
    release: bool,
    /// Why (e.g. a case number); recorded with the hold.
    #[arg(long, default_value = "")]
    reference: String,
}

#[derive(Args, Debug)]
pub(crate) struct RestrictArgs {
    /// The visitor's email.
    #[arg(long)]
    email: String,
    /// Lift the restriction instead of placing it.
    #[arg(long)]
    lift: bool,
    /// Your reference for the audit log.
    #[arg(long, default_value = "")]
    reference: String,
}

#[derive(Args, Debug)]
pub(crate) struct RectifyArgs {
    /// The visitor's current email.
    #[arg(long)]
    email: String,
    /// The corrected email.
    #[arg(long)]
    new_email: Option<String>,
    /// The corrected name.
    #[arg(long)]
    name: Option<String>,
    /// The corrected phone number.
    #[arg(long)]
    phone: Option<String>,
    /// Your reference for the audit log.
    #[arg(long, default_value = "")]
    reference: String,
}

pub(crate) fn rectify(store: &Store, args: &RectifyArgs) -> Result<ExitCode> {
    if args.new_email.is_none() && args.name.is_none() && args.phone.is_none() {
        bail!("give at least one of --new-email, --name, --phone");
    }
    let fix = shredlog::Rectification::new(
        args.new_email.clone(),
        args.name.clone(),
        args.phone.clone(),
    );
    let report = store
        .rectify_visitor(&args.email, &fix, &args.reference)
        .context("rectification failed")?;
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub(crate) struct RewriteArgs {
    /// The transcript to rewrite.
    #[arg(long, conflicts_with = "stale", required_unless_present = "stale")]
    transcript: Option<String>,
    /// A literal string to treat as personal data (repeatable).
    #[arg(long = "span")]
    spans: Vec<String>,
    /// Rewrite every transcript written under older detection rules.
    #[arg(long)]
    stale: bool,
    /// Your reference for the audit log.
    #[arg(long, default_value = "rewrite")]
    reference: String,
}

pub(crate) fn rewrite(store: &Store, args: &RewriteArgs) -> Result<ExitCode> {
    if args.stale {
        let n = store
            .rewrite_stale(&args.reference)
            .context("rewriting failed")?;
        writeln!(
            super::out::stdout(),
            "rewrote {n} transcripts under detection rules version {}",
            shredlog::pii::RULES_VERSION
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let id = args.transcript.as_deref().unwrap_or_default();
    let report = store
        .rewrite_transcript(id, &args.spans, &args.reference)
        .context("rewriting failed")?;
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

/// Parses `90d`, `12h`, `30m`, `45s`, `2w` (or plain milliseconds `500ms`).
pub(crate) fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90d, 12h, 30m"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(format!("`{s}`: the unit must be one of ms, s, m, h, d, w")),
    };
    n.checked_mul(ms)
        .ok_or_else(|| format!("`{s}` is too long"))
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    writeln!(super::out::stdout(), "{}", serde_json::to_string_pretty(v)?)?;
    Ok(())
}

/// Prints what an operation would do; fails, as the operation would, if a
/// legal hold refuses it.
fn dry_run(preview: &shredlog::Preview, what: &str) -> Result<ExitCode> {
    print_json(preview)?;
    if preview.refused_by_hold {
        bail!("dry run: the {what} would be refused: a legal hold applies (release it first)");
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn redact(store: &Store, args: &RedactArgs) -> Result<ExitCode> {
    if args.dry_run {
        let preview = store
            .preview_redact_visitor(&args.email)
            .context("the erasure request failed")?;
        return dry_run(&preview, "erasure");
    }
    let report = store
        .redact_visitor(&args.email, &args.reference)
        .context("the erasure request failed")?;
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn delete(store: &Store, args: &DeleteArgs) -> Result<ExitCode> {
    if args.dry_run {
        let preview = match (&args.target.email, &args.target.transcript) {
            (Some(email), _) => store.preview_delete_visitor(email),
            (_, Some(id)) => store.preview_delete_transcript(id),
            _ => bail!("give --email or --transcript"),
        }
        .context("deletion failed")?;
        return dry_run(&preview, "deletion");
    }
    let report = match (&args.target.email, &args.target.transcript) {
        (Some(email), _) => store.delete_visitor(email, &args.reference),
        (_, Some(id)) => store.delete_transcript(id, &args.reference),
        _ => bail!("give --email or --transcript"),
    }
    .context("deletion failed")?;
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

impl RetentionArgs {
    /// A period of 0 acts on every transcript at once: only when confirmed
    /// (checked before the store is opened, so that a refusal writes nothing).
    pub(crate) fn check_confirmed(&self) -> Result<()> {
        if self.older_than == 0 && !self.confirm_zero && !self.dry_run {
            bail!(
                "a period of 0 {} every transcript not on hold now; add --confirm-zero if that is meant (--dry-run shows how many)",
                if self.delete { "deletes" } else { "redacts" }
            );
        }
        Ok(())
    }
}

pub(crate) fn retention(store: &Store, args: &RetentionArgs) -> Result<ExitCode> {
    let now = Timestamp::now().unix_millis();
    if args.dry_run {
        let preview = store
            .preview_retention(args.older_than, args.delete, now)
            .context("the retention run failed")?;
        return dry_run(&preview, "retention run");
    }
    let report = store
        .apply_retention(args.older_than, args.delete, now, &args.reference)
        .context("the retention run failed")?;
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn consent(store: &Store, email: &str) -> Result<ExitCode> {
    print_json(
        &store
            .consent(email)
            .context("cannot read the consent state")?,
    )?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn hold(store: &Store, args: &HoldArgs) -> Result<ExitCode> {
    let target = match (&args.target.email, &args.target.transcript) {
        (Some(email), _) => HoldTarget::Email(email),
        (_, Some(id)) => HoldTarget::Transcript(id),
        _ => bail!("give --email or --transcript"),
    };
    let report = if args.release {
        store.release_hold(target, &args.reference)
    } else {
        store.place_hold(target, &args.reference)
    }
    .context("the legal hold could not be changed")?;
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn restrict(store: &Store, args: &RestrictArgs) -> Result<ExitCode> {
    let report = if args.lift {
        store.lift_restriction(&args.email, &args.reference)
    } else {
        store.restrict_visitor(&args.email, &args.reference)
    }
    .context("the restriction could not be changed")?;
    print_json(&report)?;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn reapply(store: &Store, args: &ReapplyArgs) -> Result<ExitCode> {
    let done = store
        .reapply_audit_log(&args.reference)
        .context("destroying again what the audit log destroyed failed")?;
    let mut out = super::out::stdout();
    for e in &done {
        writeln!(out, "{}", serde_json::to_string(e)?)?;
        if out.closed() {
            break;
        }
    }
    out.flush()?;
    eprintln!(
        "shredlog: {} audit entr{} had keys left; {} key(s) destroyed again",
        done.len(),
        if done.len() == 1 { "y" } else { "ies" },
        done.iter().map(|e| e.keys_destroyed).sum::<u64>()
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn audit(store: &Store) -> Result<ExitCode> {
    let mut out = super::out::stdout();
    for e in store.audit_log()? {
        writeln!(out, "{}", serde_json::to_string(&e)?)?;
        if out.closed() {
            break;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_duration_ms;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("90d"), Ok(90 * 86_400_000));
        assert_eq!(parse_duration_ms("12h"), Ok(12 * 3_600_000));
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert!(parse_duration_ms("90").is_err());
        assert!(parse_duration_ms("d").is_err());
        assert!(parse_duration_ms("99999999999999999999d").is_err());
    }
}
