use clap::Parser;

fn main() {
    // `clickprompt runs list | head` closes stdout early: end quietly, as
    // Unix tools do, instead of panicking on the failed print.
    // SAFETY: restoring a signal's default disposition at startup, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
