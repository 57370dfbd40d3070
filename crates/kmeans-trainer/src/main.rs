//! The `kmeans-trainer` binary: the library's [`kmeans_trainer::run`], its
//! result on stdout, or one line on stderr and an exit code (see `--help`).

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match kmeans_trainer::parse_args(std::env::args_os()) {
        Ok(args) => args,
        // --help and --version arrive as "errors" that belong on stdout.
        Err(error) if !error.use_stderr() => {
            print!("{}", error.render());
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!(
                "kmeans-trainer: {}",
                kmeans_trainer::usage_error_line(&error)
            );
            return ExitCode::from(kmeans_trainer::exit::BAD_INPUT);
        }
    };
    match kmeans_trainer::run(args).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kmeans-trainer: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
