#[tokio::main]
async fn main() -> std::process::ExitCode {
    billpay::cli::main().await
}
