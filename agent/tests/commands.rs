use std::time::{Duration, Instant};

use agent::CancellationToken;
use protocol::agent::{AgentMessage, CommandId, OutputStream};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(15);

struct Finished {
    stdout: String,
    stderr: String,
    exit: AgentMessage,
    took: Duration,
}

async fn run(command: &str, timeout: Duration) -> Finished {
    run_with(command, timeout, &CancellationToken::new()).await
}

async fn run_with(command: &str, timeout: Duration, stop: &CancellationToken) -> Finished {
    let id = CommandId(uuid::Uuid::from_u128(7));
    let (tx, mut rx) = mpsc::channel(16);
    let started = Instant::now();
    let collect = async {
        let (mut stdout, mut stderr) = (String::new(), String::new());
        while let Some(message) = rx.recv().await {
            match message {
                AgentMessage::CommandOutput {
                    id: got,
                    stream,
                    data,
                } => {
                    assert_eq!(got, id);
                    match stream {
                        OutputStream::Stdout => stdout.push_str(&data),
                        OutputStream::Stderr => stderr.push_str(&data),
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        (stdout, stderr)
    };
    let (exit, (stdout, stderr)) = tokio::time::timeout(WAIT, async {
        tokio::join!(
            agent::commands::run(id, command, timeout, tx, stop),
            collect
        )
    })
    .await
    .expect("command finishes in time");
    if let AgentMessage::CommandExited { id: got, .. } = &exit {
        assert_eq!(*got, id);
    }
    Finished {
        stdout,
        stderr,
        exit,
        took: started.elapsed(),
    }
}

fn exit_parts(exit: &AgentMessage) -> (Option<i32>, bool, Option<String>) {
    match exit {
        AgentMessage::CommandExited {
            exit_code,
            timed_out,
            error,
            ..
        } => (*exit_code, *timed_out, error.clone()),
        other => panic!("expected CommandExited, got {other:?}"),
    }
}

#[tokio::test]
async fn echo_reports_output_and_exit_code() {
    let done = run("echo hello; echo wörld; exit 3", Duration::from_secs(10)).await;
    assert_eq!(done.stdout, "hello\nwörld\n");
    assert_eq!(done.stderr, "");
    assert_eq!(exit_parts(&done.exit), (Some(3), false, None));
}

#[tokio::test]
async fn stderr_is_streamed_while_the_command_runs() {
    let id = CommandId(uuid::Uuid::from_u128(8));
    let (tx, mut rx) = mpsc::channel(16);
    let stop = CancellationToken::new();
    let started = Instant::now();
    let running = tokio::spawn(async move {
        agent::commands::run(
            id,
            "echo first >&2; sleep 2; echo second >&2",
            Duration::from_secs(10),
            tx,
            &stop,
        )
        .await
    });
    let first = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("output in time")
        .expect("a chunk");
    assert_eq!(
        first,
        AgentMessage::CommandOutput {
            id,
            stream: OutputStream::Stderr,
            data: "first\n".into()
        }
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the first line must arrive before the command ends ({:?})",
        started.elapsed()
    );
    let second = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("output in time")
        .expect("a chunk");
    assert!(
        matches!(second, AgentMessage::CommandOutput { ref data, stream: OutputStream::Stderr, .. } if data == "second\n")
    );
    let exit = tokio::time::timeout(WAIT, running)
        .await
        .expect("exits in time")
        .expect("task");
    assert_eq!(exit_parts(&exit), (Some(0), false, None));
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    // The backgrounded sleep is a grandchild: only a group kill gets it.
    let done = run("sleep 30 & echo $!; sleep 10", Duration::from_secs(1)).await;
    assert_eq!(exit_parts(&done.exit), (None, true, None));
    assert!(done.took < Duration::from_secs(4), "took {:?}", done.took);
    let grandchild: u32 = done.stdout.trim().parse().expect("pid printed");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Gone, or a zombie waiting for a reaper that is not us.
        let state = std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
            .ok()
            .and_then(|stat| stat.rsplit(')').next().map(|s| s.trim().chars().next()))
            .flatten();
        if matches!(state, None | Some('Z')) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "grandchild {grandchild} survived: {state:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_missing_command_exits_127() {
    let done = run("definitely-not-a-command-xyz", Duration::from_secs(10)).await;
    assert_eq!(exit_parts(&done.exit).0, Some(127));
    assert!(done.stderr.contains("not found"), "{}", done.stderr);
}

#[tokio::test]
async fn stopping_the_agent_kills_running_commands() {
    let stop = CancellationToken::new();
    let cancel = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let done = run_with("sleep 30", Duration::ZERO, &stop).await;
    let (code, timed_out, error) = exit_parts(&done.exit);
    assert_eq!((code, timed_out), (None, false));
    assert!(error.is_some());
    assert!(done.took < Duration::from_secs(4));
}

#[tokio::test]
async fn commands_run_concurrently() {
    let started = Instant::now();
    let (a, b, c) = tokio::join!(
        run("sleep 1; echo a", Duration::from_secs(10)),
        run("sleep 1; echo b", Duration::from_secs(10)),
        run("sleep 1; echo c", Duration::from_secs(10)),
    );
    assert_eq!(
        (a.stdout.as_str(), b.stdout.as_str(), c.stdout.as_str()),
        ("a\n", "b\n", "c\n")
    );
    assert!(started.elapsed() < Duration::from_millis(2500));
}
