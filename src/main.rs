use clap::Parser;

fn main() {
    clickprompt::alloc::tune_for_training();
    let cli = clickprompt::cli::Cli::parse();
    match clickprompt::cli::dispatch(cli) {
        Ok(()) => {}
        Err(err) => {
            let code = clickprompt::error::exit_code(&err);
            if let Some(fault) = clickprompt::error::db_fault(&err) {
                eprintln!("error: {err:#}\nhint: {}", fault.hint());
            } else if code == 2 {
                // Invalid input carries a message already rendered for people.
                eprintln!("{err}");
            } else {
                eprintln!("error: {err:#}");
            }
            std::process::exit(code);
        }
    }
}
