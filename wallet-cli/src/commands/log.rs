//! `wallet log verify`.

use civitas_client::ClientError;
use serde_json::json;

use super::Ctx;
use crate::ExitStatus;
use crate::cli::LogCommand;

pub(crate) async fn run(ctx: &mut Ctx<'_>, command: LogCommand) -> anyhow::Result<ExitStatus> {
    match command {
        LogCommand::Verify => verify(ctx).await,
    }
}

async fn verify(ctx: &mut Ctx<'_>) -> anyhow::Result<ExitStatus> {
    let mut wallet = ctx.open_wallet()?;
    let client = ctx.client(&mut wallet).await?;
    let previous = wallet.config.last_checkpoint.is_some();
    match client.checkpoint().await {
        Ok(checkpoint) => {
            ctx.remember(&mut wallet, &client)?;
            let root = civitas_core::encoding::b64(checkpoint.root());
            ctx.print(
                &json!({
                    "verified": true,
                    "origin": checkpoint.origin(),
                    "size": checkpoint.size(),
                    "root": root,
                    "time": checkpoint.time_ms(),
                    "consistentWithPrevious": previous,
                }),
                &format!(
                    "log verified: {} size {} root {}{}",
                    checkpoint.origin(),
                    checkpoint.size(),
                    root,
                    if previous {
                        " (consistent with the last checkpoint seen)"
                    } else {
                        " (first checkpoint seen)"
                    }
                ),
            )?;
            Ok(ExitStatus::Success)
        }
        Err(err @ ClientError::Inconsistent { .. }) => {
            eprintln!(
                "error: FORK DETECTED: {err}\n\nhint: keep config.json as evidence and report the registry"
            );
            ctx.print(
                &json!({"verified": false, "error": err.to_string()}),
                "log verification FAILED",
            )?;
            Ok(ExitStatus::Failure)
        }
        Err(err) => Err(err.into()),
    }
}
