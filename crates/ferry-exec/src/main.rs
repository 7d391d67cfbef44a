use std::path::Path;

/// `ferry-exec init DEST` (the init container) or `ferry-exec run [flags] -- COMMAND...` (the
/// main container); see the library's documentation.
fn main() {
    let mut args = std::env::args_os().skip(1);
    let code = match args.next().as_deref().and_then(|a| a.to_str()) {
        Some("init") => match args.next() {
            Some(dest) => match ferry_exec::install(Path::new(&dest)) {
                Ok(()) => 0,
                Err(err) => {
                    eprintln!("ferry-exec: {err}");
                    1
                }
            },
            None => usage(),
        },
        Some("run") => match ferry_exec::Run::parse(args) {
            Ok(run) => run.execute(),
            Err(err) => {
                eprintln!("ferry-exec run: {err}");
                2
            }
        },
        _ => usage(),
    };
    std::process::exit(code);
}

fn usage() -> i32 {
    eprintln!(
        "usage: ferry-exec init DEST | ferry-exec run [--result] [--script FILE] [--output NAME=PATH]... [--report FILE] -- COMMAND..."
    );
    2
}
