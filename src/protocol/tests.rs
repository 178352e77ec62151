//! The protocol driven over a real socketpair, the child played by a thread (no fork): the whole conversation of
//! each sequence, the child dying after each step, every pair of steps swapped, and messages outside a sequence.

use std::os::fd::AsFd;
use std::thread;

use super::*;

/// One move of the child in a conversation.
#[derive(Debug)]
enum Move {
    /// Take a step by waiting for the parent's message.
    Wait(Step),
    /// Send a request and wait for the reply.
    Ask(Request),
    /// Send a request without waiting (with a pipe's fd for `SeccompListener`).
    Tell(Request),
    /// The intermediate process's `Forked`: it is a copy of the child made by fork, which sends it and exits, so the
    /// child goes on from the steps it had taken before.
    Fork,
}

/// create's whole conversation, in protocol order, as the init and its forked process hold it.
fn create_conversation() -> Vec<Move> {
    vec![
        Move::Wait(Step::Go),
        Move::Ask(Request::MapIds),
        Move::Fork,
        Move::Wait(Step::Fork),
        Move::Ask(Request::RunCreateHooks),
        Move::Ask(Request::Ready),
        Move::Ask(Request::SetRlimits),
        Move::Tell(Request::SeccompListener),
    ]
}

/// exec's whole conversation.
fn exec_conversation() -> Vec<Move> {
    vec![
        Move::Fork,
        Move::Wait(Step::Fork),
        Move::Ask(Request::SetRlimits),
        Move::Tell(Request::SeccompListener),
        Move::Tell(Request::Exec),
    ]
}

/// The parent's part, recorded.
#[derive(Default)]
struct Recorder {
    log: Vec<String>,
}

impl ParentSteps for Recorder {
    fn map_ids(&mut self) -> Result<()> {
        self.log.push("map ids".into());
        Ok(())
    }
    fn forked(&mut self, pid: Pid) -> Result<()> {
        self.log.push(format!("forked {pid}"));
        Ok(())
    }
    fn run_create_hooks(&mut self) -> Result<i32> {
        self.log.push("create hooks".into());
        Ok(7)
    }
    fn ready(&mut self) -> Result<()> {
        self.log.push("ready".into());
        Ok(())
    }
    fn set_rlimits(&mut self) -> Result<()> {
        self.log.push("rlimits".into());
        Ok(())
    }
    fn seccomp_listener(&mut self, _listener: OwnedFd) -> Result<()> {
        self.log.push("listener".into());
        Ok(())
    }
}

/// Play `moves` as the child on a thread, then close the child's end; the replies it got, or its error.
fn play(child: ChildEnd, moves: Vec<Move>) -> thread::JoinHandle<Result<Vec<ToChild>>> {
    thread::spawn(move || {
        let (_reader, writer) = nix::unistd::pipe()?;
        let mut replies = Vec::new();
        for m in moves {
            match m {
                Move::Wait(step) => replies.push(child.wait_for(step)?),
                Move::Ask(request) => replies.push(child.request(request)?),
                Move::Tell(request) => {
                    let fd = (request == Request::SeccompListener).then(|| writer.as_fd());
                    child.tell(request, fd)?
                }
                Move::Fork => {
                    let before = child.taken.get();
                    child.tell(Request::Forked { pid: 42 }, None)?;
                    child.taken.set(before);
                }
            }
        }
        Ok(replies)
    })
}

/// Drive `moves` through `sequence`: the parent's result, its log, and the child's replies.
fn converse(
    sequence: &Sequence,
    moves: Vec<Move>,
) -> (Result<()>, Vec<String>, Result<Vec<ToChild>>) {
    let (parent, child) = pair().unwrap();
    if matches!(moves.first(), Some(Move::Wait(Step::Go))) {
        parent.go().unwrap();
    }
    let child = play(child, moves);
    let mut recorder = Recorder::default();
    let result = parent.drive(sequence, &mut recorder);
    drop(parent);
    (result, recorder.log, child.join().unwrap())
}

#[test]
fn the_steps_are_numbered_in_protocol_order() {
    let steps = [
        Step::Go,
        Step::MapIds,
        Step::Fork,
        Step::CreateHooks,
        Step::Ready,
        Step::Rlimits,
        Step::SeccompListener,
        Step::Exec,
    ];
    let numbers: Vec<u8> = steps.iter().map(|&step| step as u8).collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn create_takes_every_step_in_order() {
    let (result, log, replies) = converse(&CREATE, create_conversation());
    result.unwrap();
    assert_eq!(
        log,
        [
            "map ids",
            "forked 42",
            "create hooks",
            "ready",
            "rlimits",
            "listener"
        ]
    );
    assert_eq!(
        replies.unwrap(),
        [
            ToChild::Go,
            ToChild::IdsMapped,
            ToChild::ForkSeen,
            ToChild::CreateHooksRan { pid: 7 },
            ToChild::StateSaved,
            ToChild::RlimitsSet,
        ]
    );
}

#[test]
fn exec_takes_every_step_in_order() {
    let (result, log, replies) = converse(&EXEC, exec_conversation());
    result.unwrap();
    assert_eq!(log, ["forked 42", "rlimits", "listener"]);
    assert_eq!(replies.unwrap(), [ToChild::ForkSeen, ToChild::RlimitsSet]);
}

#[test]
fn a_child_that_dies_after_any_step_is_reported() {
    for (sequence, conversation, required) in [
        (&CREATE, create_conversation as fn() -> Vec<Move>, "Ready"),
        (&EXEC, exec_conversation, "Exec"),
    ] {
        let moves = conversation();
        let done_at = moves
            .iter()
            .position(|m| format!("{m:?}").contains(required))
            .unwrap();
        for cut in 0..=moves.len() {
            let mut moves = conversation();
            moves.truncate(cut);
            let (result, _, _) = converse(sequence, moves);
            let expected = match (cut > done_at, sequence.name) {
                (true, _) => None,
                (false, "create") => {
                    Some("error during container init: container init exited unexpectedly")
                }
                (false, _) => Some("the new process exited before its execve"),
            };
            let seen = result.err().map(|e| format!("{e:#}"));
            assert_eq!(
                seen.as_deref(),
                expected,
                "{} cut after {cut} moves",
                sequence.name
            );
        }
    }
}

/// Every request of a sequence, in order.
fn requests(sequence: &Sequence) -> Vec<Request> {
    sequence
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Go => None,
            Step::MapIds => Some(Request::MapIds),
            Step::Fork => Some(Request::Forked { pid: 42 }),
            Step::CreateHooks => Some(Request::RunCreateHooks),
            Step::Ready => Some(Request::Ready),
            Step::Rlimits => Some(Request::SetRlimits),
            Step::SeccompListener => Some(Request::SeccompListener),
            Step::Exec => Some(Request::Exec),
        })
        .collect()
}

/// Send `sent` as the child, unchecked (a child whose code took its steps out of order), replies ignored.
fn drive_raw(sequence: &Sequence, sent: Vec<ToParent>) -> anyhow::Error {
    let (parent, child) = pair().unwrap();
    let (_reader, writer) = nix::unistd::pipe().unwrap();
    for msg in &sent {
        let fd = matches!(msg, ToParent::Request(Request::SeccompListener)).then(|| writer.as_fd());
        child.channel.send(msg, fd).unwrap();
    }
    drop(child);
    parent
        .drive(sequence, &mut Recorder::default())
        .expect_err("the drive must fail")
}

#[test]
fn every_step_out_of_order_is_rejected_naming_both() {
    for sequence in [&CREATE, &EXEC] {
        let all = requests(sequence);
        for later in 0..all.len() {
            for earlier in 0..=later {
                let list = requests(sequence);
                let (first, second) = (&list[later], &list[earlier]);
                let err = drive_raw(
                    sequence,
                    vec![
                        ToParent::Request(requests(sequence).remove(later)),
                        ToParent::Request(requests(sequence).remove(earlier)),
                    ],
                );
                assert_eq!(
                    err.to_string(),
                    format!(
                        "sync protocol error: {second:?} (step {:?}) came after step {:?}",
                        second.step(),
                        first.step()
                    ),
                    "{} sends {first:?} then {second:?}",
                    sequence.name
                );
            }
        }
    }
}

#[test]
fn a_message_outside_the_sequence_is_rejected_by_name() {
    let err = drive_raw(&CREATE, vec![ToParent::Request(Request::Exec)]);
    assert_eq!(
        err.to_string(),
        "sync protocol error: Exec is not a step of create"
    );
    let err = drive_raw(&EXEC, vec![ToParent::Request(Request::Ready)]);
    assert_eq!(
        err.to_string(),
        "sync protocol error: Ready is not a step of exec"
    );
}

#[test]
fn a_parents_message_sent_by_the_child_is_unknown() {
    let (parent, child) = pair().unwrap();
    child.channel.send(&ToChild::Go, None).unwrap();
    let err = parent.drive(&CREATE, &mut Recorder::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"sync protocol error: unknown message "\"Go\"""#
    );
}

#[test]
fn the_childs_error_ends_the_drive_with_its_chain() {
    let chain = vec![
        "mount proc".to_owned(),
        "Operation not permitted".to_owned(),
    ];
    let err = drive_raw(
        &CREATE,
        vec![
            ToParent::Request(Request::MapIds),
            ToParent::Error {
                chain: chain.clone(),
            },
        ],
    );
    assert_eq!(
        format!("{err:#}"),
        "error during container init: mount proc: Operation not permitted"
    );
    let err = drive_raw(&EXEC, vec![ToParent::Error { chain }]);
    assert_eq!(format!("{err:#}"), "mount proc: Operation not permitted");
}

#[test]
fn the_child_refuses_to_take_a_step_out_of_order() {
    let (parent, child) = pair().unwrap();
    parent.channel.send(&ToChild::StateSaved, None).unwrap();
    assert_eq!(child.request(Request::Ready).unwrap(), ToChild::StateSaved);
    let err = child.request(Request::MapIds).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sync protocol error: step MapIds after step Ready"
    );
    let err = child.wait_for(Step::Ready).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sync protocol error: step Ready after step Ready"
    );
}

#[test]
fn the_child_rejects_a_reply_of_another_step() {
    let (parent, child) = pair().unwrap();
    parent.channel.send(&ToChild::RlimitsSet, None).unwrap();
    let err = child.request(Request::MapIds).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sync protocol error: expected the parent's MapIds, got RlimitsSet"
    );
    drop(parent);
    let err = child.wait_for(Step::Fork).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sync protocol error: hull closed the channel at Fork"
    );
}

#[test]
fn a_long_cause_is_shortened_around_a_marker() {
    let text = format!("{}{}", "a".repeat(2000), "the cause");
    let short = shorten(text.clone());
    assert!(short.len() <= MAX_CAUSE_LEN + 40, "{}", short.len());
    assert!(short.starts_with("aaaa"));
    assert!(short.ends_with("the cause"));
    assert!(short.contains(" bytes ...] "));
    assert_eq!(shorten("short".into()), "short");
}
