//! One module per command group, and what they share: opening the wallet, talking to the
//! registry with pinned keys, and printing.

mod audit;
mod credential;
mod did;
mod init;
mod log;
mod request;
mod trust;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use civitas_client::RegistryClient;
use civitas_core::proof::PinnedKeys;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cli::{Cli, Command, GlobalArgs};
use crate::store::Wallet;
use crate::{Env, ExitStatus};

pub(crate) async fn run(
    cli: Cli,
    env: &Env,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ExitStatus> {
    let mut ctx = Ctx {
        global: cli.global,
        env,
        out,
    };
    match cli.command {
        Command::Init(args) => init::run(&mut ctx, args),
        Command::Did(command) => did::run(&mut ctx, command).await,
        Command::Trust(command) => trust::run(&mut ctx, command).await,
        Command::Log(command) => log::run(&mut ctx, command).await,
        Command::Credential(command) => credential::run(&mut ctx, command).await,
        Command::Request(args) => request::run(&mut ctx, args).await,
        Command::Audit(args) => audit::run(&mut ctx, args).await,
    }
}

/// What every command has at hand.
pub(crate) struct Ctx<'a> {
    pub(crate) global: GlobalArgs,
    pub(crate) env: &'a Env,
    pub(crate) out: &'a mut (dyn Write + Send),
}

impl Ctx<'_> {
    pub(crate) fn wallet_dir(&self) -> anyhow::Result<PathBuf> {
        if let Some(dir) = &self.global.wallet_dir {
            return Ok(dir.clone());
        }
        match &self.env.home {
            Some(home) => Ok(home.join(".civitas").join("wallet")),
            None => {
                bail!("no --wallet-dir given and HOME is not set\n\nhint: pass --wallet-dir DIR")
            }
        }
    }

    pub(crate) fn passphrase(&self, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
        if let Some(p) = &self.env.passphrase {
            return Ok(p.clone());
        }
        let first = Zeroizing::new(rpassword::prompt_password("wallet passphrase: ").context(
            "reading the passphrase (set CIVITAS_PASSPHRASE when there is no terminal)",
        )?);
        if confirm {
            let second = Zeroizing::new(
                rpassword::prompt_password("repeat the passphrase: ")
                    .context("reading the passphrase")?,
            );
            if first != second {
                bail!("the two passphrases differ");
            }
        }
        Ok(first)
    }

    pub(crate) fn open_wallet(&self) -> anyhow::Result<Wallet> {
        let dir = self.wallet_dir()?;
        let passphrase = self.passphrase(false)?;
        Wallet::open(&dir, &passphrase)
    }

    /// A registry client with the wallet's pinned keys; pins the registry's key on first
    /// contact when none is pinned.
    pub(crate) async fn client(&self, wallet: &mut Wallet) -> anyhow::Result<RegistryClient> {
        let url = self
            .global
            .registry
            .clone()
            .or_else(|| wallet.config.registry.clone())
            .context("no registry URL\n\nhint: pass --registry URL (or set CIVITAS_REGISTRY)")?;
        if wallet.config.log_keys.is_empty() {
            let key = civitas_client::fetch_log_key(&url).await?;
            eprintln!(
                "pinned the registry's log key on first contact: {key}\nfingerprint: {}",
                civitas_core::encoding::b64url(
                    &civitas_core::encoding::sha256(key.to_string().as_bytes())[..12]
                )
            );
            wallet.config.log_keys.push(key.to_string());
            wallet.config.registry.get_or_insert(url.clone());
            wallet.save_config()?;
        }
        let verifiers = wallet
            .config
            .log_keys
            .iter()
            .map(|k| k.parse())
            .collect::<Result<Vec<_>, _>>()
            .context("a pinned log key in config.json is malformed")?;
        let pins = PinnedKeys {
            verifiers,
            min_signatures: wallet.config.min_signatures,
        };
        let mut client = RegistryClient::new(&url, pins)?
            .with_staleness(std::time::Duration::from_millis(wallet.config.staleness_ms));
        if let Some(last) = &wallet.config.last_checkpoint {
            client = client.with_last_checkpoint(last).context(
                "the last checkpoint in config.json does not verify with the pinned keys",
            )?;
        }
        Ok(client)
    }

    /// Persists the last checkpoint the client accepted.
    pub(crate) fn remember(
        &self,
        wallet: &mut Wallet,
        client: &RegistryClient,
    ) -> anyhow::Result<()> {
        if let Some(last) = client.last_checkpoint()
            && wallet.config.last_checkpoint.as_ref() != Some(&last)
        {
            {
                wallet.config.last_checkpoint = Some(last);
                wallet.save_config()?;
            }
        }
        Ok(())
    }

    /// Prints `value` as JSON with --json, else `text`.
    pub(crate) fn print<T: Serialize>(&mut self, value: &T, text: &str) -> anyhow::Result<()> {
        if self.global.json {
            serde_json::to_writer_pretty(&mut *self.out, value).context("writing output")?;
            writeln!(self.out).context("writing output")?;
        } else {
            write!(self.out, "{text}").context("writing output")?;
            if !text.ends_with('\n') {
                writeln!(self.out).context("writing output")?;
            }
        }
        Ok(())
    }
}
