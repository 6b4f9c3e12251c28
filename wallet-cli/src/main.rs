//! `wallet`: see `wallet --help`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = wallet_cli::Cli::parse();
    let env = wallet_cli::Env::from_process();
    let mut stdout = std::io::stdout();
    let result = wallet_cli::run(cli, &env, &mut stdout).await;
    let _ = stdout.flush();
    match result {
        Ok(wallet_cli::ExitStatus::Success) => ExitCode::SUCCESS,
        Ok(wallet_cli::ExitStatus::Failure) => ExitCode::from(1),
        Err(err) => {
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
