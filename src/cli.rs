//! The command line: `serve` (default), `check-config`, `openapi`, `hash-secret`,
//! `revoke`, `reload`, `keys`.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Token-exchange service: session tokens in, RS256 JWTs out"
)]
pub struct Cli {
    /// TOML configuration file (defaults, then this file, then TESSERA__SECTION__KEY variables).
    #[arg(long, global = true, env = "TESSERA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Validate the configuration and exit.
    CheckConfig,
    /// Print the OpenAPI document.
    Openapi,
    /// Read a secret from stdin and print its hex SHA-256 for `secret_sha256` / `token_sha256`.
    HashSecret,
    /// Revoke a token, a session or a user in the configured (shared) denylist.
    Revoke(RevokeArgs),
    /// Make the running server reload its configuration: sends SIGHUP to the process in
    /// server.pid_file.
    Reload,
    /// Manage signing keys in the configured keystore (running servers follow within
    /// keys.reload_interval_seconds).
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Every key with its state and timestamps.
    List,
    /// Publish a new key that signs after keys.publish_lead_seconds (or at once with --now).
    Rotate {
        /// Emergency (key compromise): sign with the new key at once, retire the old one.
        #[arg(long)]
        now: bool,
    },
    /// Retire a pending or retired key (the active key: rotate first).
    Retire {
        /// Key ids are base64url and may start with '-'.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Re-encrypt every private key under the current keys.encryption_key.
    Rewrap,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["jti", "session", "sid", "subject"])))]
pub struct RevokeArgs {
    /// A token id: that token is dead until it expires.
    #[arg(long, allow_hyphen_values = true)]
    pub jti: Option<String>,
    /// A session token: every token of that session is dead and it cannot be exchanged.
    #[arg(long, allow_hyphen_values = true)]
    pub session: Option<String>,
    /// A session by the `sid` claim of its tokens (as seen in a JWT): the same as --session.
    #[arg(long, allow_hyphen_values = true)]
    pub sid: Option<String>,
    /// A user id: every token of that user issued up to now is dead.
    #[arg(long, allow_hyphen_values = true)]
    pub subject: Option<String>,
    /// Why, for the audit log.
    #[arg(long)]
    pub reason: Option<String>,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            print!("{}", crate::http::openapi::document());
            ExitCode::SUCCESS
        }
        Command::HashSecret => {
            let mut secret = String::new();
            if std::io::stdin().read_to_string(&mut secret).is_err() {
                eprintln!("tessera: could not read the secret from stdin");
                return ExitCode::FAILURE;
            }
            println!(
                "{}",
                crate::clients::hash_secret(secret.trim_end_matches(['\n', '\r']))
            );
            ExitCode::SUCCESS
        }
        Command::CheckConfig => match load(cli.config.as_deref()) {
            Ok(settings) => {
                for warning in settings.warnings() {
                    eprintln!("tessera: warning: {warning}");
                }
                println!("configuration ok");
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Reload => match load(cli.config.as_deref()).map(|s| signal_reload(&s)) {
            Ok(Ok(pid)) => {
                println!(
                    "sent SIGHUP to tessera (pid {pid}); its log says whether the reload applied"
                );
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                eprintln!("tessera: {e:#}");
                ExitCode::FAILURE
            }
            Err(code) => code,
        },
        Command::Revoke(args) => {
            let settings = match load(cli.config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            crate::infra::telemetry::init(&settings.log, None);
            match revoke(&settings, args) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tessera: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Keys(command) => {
            let settings = match load(cli.config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            crate::infra::telemetry::init(&settings.log, None);
            match keys(&settings, command) {
                Ok(output) => {
                    print!("{output}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tessera: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            let settings = match load(cli.config.as_deref()) {
                Ok(s) => s,
                Err(code) => return code,
            };
            crate::infra::telemetry::init(&settings.log, Some(&settings.telemetry));
            let source = crate::config::ConfigSource {
                file: cli.config.clone(),
            };
            match crate::http::server::serve(settings, source) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("tessera: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn load(file: Option<&std::path::Path>) -> Result<Settings, ExitCode> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    Settings::load(file, &env).map_err(|e| {
        eprintln!("tessera: {e}");
        ExitCode::from(2)
    })
}

/// Sends SIGHUP to the server whose pid is in `server.pid_file`.
fn signal_reload(settings: &Settings) -> anyhow::Result<i32> {
    use rustix::process::{Pid, Signal, kill_process};
    let path = settings.server.pid_file.as_ref().ok_or_else(|| {
        anyhow::anyhow!("server.pid_file is not set; set it, or send SIGHUP to the server yourself")
    })?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read server.pid_file {}: {e}; is tessera running?",
            path.display()
        )
    })?;
    let pid = text
        .trim()
        .parse::<i32>()
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| anyhow::anyhow!("server.pid_file {} holds no process id", path.display()))?;
    kill_process(pid, Signal::HUP)
        .map_err(|e| anyhow::anyhow!("cannot signal process {}: {e}", pid.as_raw_nonzero()))?;
    Ok(pid.as_raw_nonzero().get())
}

fn revoke(settings: &Settings, args: RevokeArgs) -> anyhow::Result<String> {
    use crate::revocation::{Revocations, Target};
    let target = match (args.jti, args.session, args.sid, args.subject) {
        (Some(jti), _, _, _) => Target::Jti(jti),
        (_, Some(session), _, _) => Target::Session(session),
        (_, _, Some(sid), _) => Target::Sid(sid),
        (_, _, _, Some(subject)) => Target::Subject(subject),
        _ => anyhow::bail!("give one of --jti, --session, --sid, --subject"),
    };
    target.check()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let denylist = crate::denylist::DenylistStore::from_settings(settings)?;
        if !denylist.is_shared() {
            anyhow::bail!(
                "denylist.backend is \"memory\", which lives inside the server process; set denylist.backend = \"redis\" or use POST /admin/revocations"
            );
        }
        let sessions = crate::sessions::SessionBackend::from_settings(settings)?;
        // Publishes to the shared stream only; the servers follow it.
        let feed = crate::feed::Feed::new(settings, &denylist);
        let revocations = Revocations::new(
            std::sync::Arc::new(denylist),
            std::sync::Arc::new(feed),
            std::sync::Arc::new(sessions),
            std::sync::Arc::new(crate::infra::clock::SystemClock),
            settings.token.max_ttl_seconds,
        );
        let revoked = revocations
            .revoke(&target, args.reason.as_deref(), &operator())
            .await?;
        Ok(format!(
            "revoked {} {} for {} s",
            revoked.kind, revoked.id, revoked.expires_in
        ))
    })
}

fn operator() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<String> {
    use crate::keys::policy::{self, Policy};
    use crate::keys::store::{Applied, Plan};
    use std::fmt::Write as _;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = crate::keys::open_store(settings).await?;
        let policy = Policy::from_settings(settings);
        let now = crate::infra::clock::Clock::now(&crate::infra::clock::SystemClock);
        let bits = settings.keys.rsa_bits;
        let mut out = String::new();
        match command {
            KeysCommand::List => {
                let (_, stored) = store.load().await?;
                let records: Vec<_> = stored.into_iter().map(|k| k.record).collect();
                writeln!(
                    out,
                    "{:<44} {:<8} {:<21} {:<21} RETIRES_AT",
                    "KID", "STATE", "CREATED_AT", "ACTIVATES_AT"
                )?;
                for v in policy::view(&records, now, &policy) {
                    let retires = v
                        .retired_at
                        .map(crate::infra::clock::rfc3339)
                        .unwrap_or_else(|| "-".into());
                    let state = serde_json::to_value(v.state)?
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    writeln!(
                        out,
                        "{:<44} {:<8} {:<21} {:<21} {retires}",
                        v.record.kid,
                        state,
                        crate::infra::clock::rfc3339(v.record.created_at),
                        crate::infra::clock::rfc3339(v.record.activates_at),
                    )?;
                }
            }
            KeysCommand::Rotate { now: immediate } => {
                let rotate: Plan =
                    Box::new(move |records| Ok(policy::rotate(records, now, &policy, immediate)?));
                for a in store.apply(&operator(), now, bits, rotate).await? {
                    if let Applied::Generated(r) = a {
                        writeln!(
                            out,
                            "new key {} signs from {}",
                            r.kid,
                            crate::infra::clock::rfc3339(r.activates_at)
                        )?;
                    }
                }
            }
            KeysCommand::Retire { kid } => {
                let target = kid.clone();
                let retire: Plan =
                    Box::new(move |records| Ok(policy::retire(records, now, &policy, &target)?));
                let applied = store.apply(&operator(), now, bits, retire).await?;
                writeln!(
                    out,
                    "{}",
                    if applied.is_empty() {
                        format!("key {kid} was already retired")
                    } else {
                        format!("key {kid} retired")
                    }
                )?;
            }
            KeysCommand::Rewrap => {
                let n = store.rewrap(&operator(), now).await?;
                writeln!(
                    out,
                    "re-encrypted {n} key(s) under the current keys.encryption_key"
                )?;
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, KeysCommand};

    /// Key ids and token ids are base64url: one in 64 starts with '-'.
    #[test]
    fn ids_that_start_with_a_dash_are_values_not_flags() {
        let cli = Cli::try_parse_from(["tessera", "keys", "retire", "-D4xk_Q"]).expect("parse");
        assert!(
            matches!(cli.command, Some(Command::Keys(KeysCommand::Retire { kid })) if kid == "-D4xk_Q")
        );
        let cli = Cli::try_parse_from(["tessera", "revoke", "--jti", "-x1", "--reason", "leak"])
            .expect("parse");
        assert!(
            matches!(cli.command, Some(Command::Revoke(args)) if args.jti.as_deref() == Some("-x1"))
        );
    }
}
