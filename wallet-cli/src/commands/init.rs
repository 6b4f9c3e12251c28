//! `wallet init`.

use anyhow::Context as _;
use serde_json::json;

use super::Ctx;
use crate::ExitStatus;
use crate::cli::{InitArgs, KdfProfile};
use crate::keystore::KdfParams;
use crate::store::{Config, Wallet};

pub(crate) fn run(ctx: &mut Ctx<'_>, args: InitArgs) -> anyhow::Result<ExitStatus> {
    let dir = ctx.wallet_dir()?;
    for key in &args.log_keys {
        key.parse::<civitas_core::note::NoteVerifier>()
            .with_context(|| {
                format!("--log-key {key:?} is not a note verifier key (name+keyid+base64)")
            })?;
    }
    if args.min_signatures == 0
        || (!args.log_keys.is_empty() && args.min_signatures > args.log_keys.len())
    {
        anyhow::bail!(
            "--min-signatures must be between 1 and the number of --log-key keys ({})",
            args.log_keys.len()
        );
    }
    let config = Config {
        registry: ctx.global.registry.clone(),
        log_keys: args.log_keys,
        min_signatures: args.min_signatures,
        staleness_ms: u64::try_from(args.staleness.as_millis()).unwrap_or(u64::MAX),
        last_checkpoint: None,
    };
    let params = match args.kdf {
        KdfProfile::Default => KdfParams::DEFAULT,
        KdfProfile::Minimum => KdfParams::MINIMUM,
    };
    let passphrase = ctx.passphrase(true)?;
    Wallet::create(&dir, &passphrase, config, params)?;
    ctx.print(
        &json!({"walletDir": dir.display().to_string()}),
        &format!("created a wallet in {}", dir.display()),
    )?;
    Ok(ExitStatus::Success)
}
