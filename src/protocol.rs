//! The sync protocol between hull and a process it clones: the container init of `create`, or the process of
//! `exec`. It is one sequence of [`Step`]s, written once here; create's init takes the steps of [`CREATE`], an
//! exec'd process those of [`EXEC`], each at most once and in this order. Most steps are a request from the child and
//! the parent's reply. Both ends check the order: the child refuses to take a step out of order ([`ChildEnd`]), and
//! the parent's one driver ([`ParentEnd::drive`]) rejects a message out of order or not in its sequence, naming both.
//! `// sync N` marks where each end takes step N.

use std::cell::Cell;
use std::convert::Infallible;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use anyhow::{anyhow, bail, Context, Result};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::channel::{self, Channel, Received};

/// The steps, in protocol order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// sync 1. parent → child `Go`, unasked: hull has written the id maps of the new user namespace the child was
    /// cloned into, or systemd has put the child into the container's unit (`Init::awaits_go`).
    Go = 1,
    /// sync 2. `MapIds`: the child unshared a user namespace after joining others; hull writes its id maps and
    /// replies `IdsMapped`.
    MapIds = 2,
    /// sync 3. `Forked`: joining or creating a pid (or time) namespace needed a fork; the intermediate process sends
    /// the forked pid and exits, and the forked process goes on at `ForkSeen` (without this wait its next message
    /// could overtake `Forked`).
    Fork = 3,
    /// sync 4. `RunCreateHooks`: mounts done, `pivot_root` next; hull runs the prestart and createRuntime hooks and
    /// replies `CreateHooksRan` with the init's host pid, for the container's own hooks.
    CreateHooks = 4,
    /// sync 5. `Ready`: set up in the container, the pid final; hull records the init in state.json (from then on
    /// the init may outlive hull) and replies `StateSaved`. The init then takes the process's identity, closes its
    /// end (read as "parked") and waits for `start`.
    Ready = 5,
    /// sync 6. `SetRlimits`: about to switch user; hull sets the rlimits with prlimit(2) on a process that still has
    /// its uid, as runc does at `procReady` (only for a process in a user namespace, `child::RlimitsBy`), and replies
    /// `RlimitsSet`.
    Rlimits = 6,
    /// sync 7. `SeccompListener`: the seccomp filter is loaded; its notify listener fd rides along, for hull to pass
    /// on to the profile's `listenerPath`. No reply.
    SeccompListener = 7,
    /// sync 8. `Exec` (exec only): calling execve now. The channel is close-on-exec, so its closing next means the
    /// program runs; a failed execve sends `Error` instead.
    Exec = 8,
}

/// A variant of the protocol: the steps one kind of child takes.
pub struct Sequence {
    name: &'static str,
    steps: &'static [Step],
    /// The child may close its end only after this step; before it, a closed channel means it died.
    last_required: Step,
    /// What a child that died before `last_required` is reported as.
    died: &'static str,
    /// The context of an error the child reports.
    child_error: Option<&'static str>,
}

/// The container init's steps (`create`).
pub const CREATE: Sequence = Sequence {
    name: "create",
    steps: &[
        Step::Go,
        Step::MapIds,
        Step::Fork,
        Step::CreateHooks,
        Step::Ready,
        Step::Rlimits,
        Step::SeccompListener,
    ],
    last_required: Step::Ready,
    died: "container init exited unexpectedly",
    child_error: Some("error during container init"),
};

/// An exec'd process's steps.
pub const EXEC: Sequence = Sequence {
    name: "exec",
    steps: &[Step::Fork, Step::Rlimits, Step::SeccompListener, Step::Exec],
    last_required: Step::Exec,
    died: "the new process exited before its execve",
    child_error: None,
};

impl Sequence {
    /// The child's failure, as this sequence reports it.
    fn child_failed(&self, cause: impl Into<String>) -> anyhow::Error {
        let err = anyhow!(cause.into());
        match self.child_error {
            Some(context) => err.context(context),
            None => err,
        }
    }
}

/// child → parent.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum ToParent {
    Request(Request),
    /// Setup failed, at any step: the full cause chain, outermost first. The child exits after sending it.
    Error {
        chain: Vec<String>,
    },
}

/// The child's message that takes a step.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum Request {
    MapIds,
    Forked { pid: i32 },
    RunCreateHooks,
    Ready,
    SetRlimits,
    SeccompListener,
    Exec,
}

/// parent → child.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub enum ToChild {
    Go,
    IdsMapped,
    ForkSeen,
    CreateHooksRan { pid: i32 },
    StateSaved,
    RlimitsSet,
}

impl Request {
    fn step(&self) -> Step {
        match self {
            Request::MapIds => Step::MapIds,
            Request::Forked { .. } => Step::Fork,
            Request::RunCreateHooks => Step::CreateHooks,
            Request::Ready => Step::Ready,
            Request::SetRlimits => Step::Rlimits,
            Request::SeccompListener => Step::SeccompListener,
            Request::Exec => Step::Exec,
        }
    }
}

impl ToChild {
    fn step(&self) -> Step {
        match self {
            ToChild::Go => Step::Go,
            ToChild::IdsMapped => Step::MapIds,
            ToChild::ForkSeen => Step::Fork,
            ToChild::CreateHooksRan { .. } => Step::CreateHooks,
            ToChild::StateSaved => Step::Ready,
            ToChild::RlimitsSet => Step::Rlimits,
        }
    }
}

/// A connected pair of ends, both close-on-exec.
pub fn pair() -> Result<(ParentEnd, ChildEnd)> {
    let (parent, child) = channel::pair()?;
    Ok((
        ParentEnd { channel: parent },
        ChildEnd {
            channel: child,
            taken: Cell::new(None),
        },
    ))
}

/// At most this many causes of a child's error are sent, each at most [`MAX_CAUSE_LEN`] bytes: the whole `Error`
/// then fits in one datagram of any socket buffer Linux allows (a larger one fails with EMSGSIZE, and the parent
/// would learn only that the child exited).
const MAX_CAUSES: usize = 16;
const MAX_CAUSE_LEN: usize = 1024;

/// The child's end: each step taken through it is checked against the steps already taken.
pub struct ChildEnd {
    channel: Channel,
    /// The last step this process took.
    taken: Cell<Option<Step>>,
}

impl ChildEnd {
    /// This end's fd, for the child's list of fds to keep (`sys::close_all_except`).
    pub fn raw_fd(&self) -> RawFd {
        self.channel.raw_fd()
    }

    fn take(&self, step: Step) -> Result<()> {
        if let Some(taken) = self.taken.get().filter(|&taken| taken >= step) {
            bail!("sync protocol error: step {step:?} after step {taken:?}");
        }
        self.taken.set(Some(step));
        Ok(())
    }

    /// Take the step of `msg`: send it, and wait for the parent's reply.
    pub fn request(&self, msg: Request) -> Result<ToChild> {
        let step = msg.step();
        self.tell(msg, None)?;
        self.receive(step)
    }

    /// Take the step of `msg` without waiting for a reply (this process exits, or the reply goes to another one, or
    /// the step has none), with `fd` attached if given.
    pub fn tell(&self, msg: Request, fd: Option<BorrowedFd<'_>>) -> Result<()> {
        self.take(msg.step())?;
        self.channel.send(&ToParent::Request(msg), fd)
    }

    /// Take `step` by waiting for the parent's message of it (`Go`, or `ForkSeen` in the forked process).
    pub fn wait_for(&self, step: Step) -> Result<ToChild> {
        self.take(step)?;
        self.receive(step)
    }

    fn receive(&self, step: Step) -> Result<ToChild> {
        match self.channel.recv::<ToChild>()? {
            Received::Message(msg) if msg.step() == step => Ok(msg),
            Received::Message(msg) => {
                bail!("sync protocol error: expected the parent's {step:?}, got {msg:?}")
            }
            Received::Closed => bail!("sync protocol error: hull closed the channel at {step:?}"),
        }
    }

    /// In a cloned child: run `setup`, which ends in execve and so never returns `Ok`; send its error to the parent
    /// as the full cause chain and exit.
    pub fn run(&self, setup: impl FnOnce() -> Result<Infallible>) -> ! {
        let err = match setup() {
            Ok(never) => match never {},
            Err(err) => err,
        };
        let chain = err
            .chain()
            .take(MAX_CAUSES)
            .map(|cause| shorten(crate::logger::cause_text(cause)))
            .collect();
        let _ = self.channel.send(&ToParent::Error { chain }, None);
        crate::sys::exit_now(1)
    }
}

/// The parent's part of each step it answers; a sequence without a step never calls its method.
pub trait ParentSteps {
    /// sync 2: write the child's id maps.
    fn map_ids(&mut self) -> Result<()> {
        bail!("sync protocol error: no parent part for MapIds")
    }
    /// sync 3: `pid` is the process that goes on (and the one that runs the program).
    fn forked(&mut self, pid: Pid) -> Result<()>;
    /// sync 4: run the prestart and createRuntime hooks; returns the init's host pid.
    fn run_create_hooks(&mut self) -> Result<i32> {
        bail!("sync protocol error: no parent part for RunCreateHooks")
    }
    /// sync 5: record the init.
    fn ready(&mut self) -> Result<()> {
        bail!("sync protocol error: no parent part for Ready")
    }
    /// sync 6: set the process's rlimits.
    fn set_rlimits(&mut self) -> Result<()>;
    /// sync 7: pass the seccomp notify listener on.
    fn seccomp_listener(&mut self, listener: OwnedFd) -> Result<()>;
}

/// hull's end.
pub struct ParentEnd {
    channel: Channel,
}

impl ParentEnd {
    /// sync 1: let a child waiting for `Go` go on. A child that died meanwhile has sent its error, which is the
    /// cause to report.
    pub fn go(&self) -> Result<()> {
        self.channel
            .send(&ToChild::Go, None)
            .map_err(|e| match self.pending_error() {
                Some(child) => child.context("error during container init"),
                None => e,
            })
    }

    /// A setup error the child already sent, if any, without waiting. When the parent's own step fails because the
    /// child has died (its pid is gone, its socket closed), the child's message is the real cause.
    fn pending_error(&self) -> Option<anyhow::Error> {
        match self.channel.try_recv()? {
            ToParent::Error { chain } => Some(anyhow!(chain.join(": "))),
            _ => None,
        }
    }

    /// Drive the child through `sequence` until it closes its end, answering each step with `parent`'s part. A
    /// message out of order or not in the sequence ends the drive with an error naming both it and the step before;
    /// so does the child's closing before the sequence's last required step, or its `Error`.
    pub fn drive(&self, sequence: &Sequence, parent: &mut dyn ParentSteps) -> Result<()> {
        let mut last: Option<Step> = None;
        loop {
            let msg = match self.channel.recv::<ToParent>()? {
                Received::Closed if last >= Some(sequence.last_required) => return Ok(()),
                Received::Closed => return Err(sequence.child_failed(sequence.died)),
                Received::Message(ToParent::Error { chain }) => {
                    return Err(sequence.child_failed(chain.join(": ")))
                }
                Received::Message(ToParent::Request(msg)) => msg,
            };
            let step = msg.step();
            if !sequence.steps.contains(&step) {
                bail!(
                    "sync protocol error: {msg:?} is not a step of {}",
                    sequence.name
                );
            }
            if let Some(before) = last.filter(|&before| before >= step) {
                bail!("sync protocol error: {msg:?} (step {step:?}) came after step {before:?}");
            }
            last = Some(step);
            let reply = match msg {
                // sync 2
                Request::MapIds => parent.map_ids().map(|()| Some(ToChild::IdsMapped)),
                // sync 3
                Request::Forked { pid } => parent
                    .forked(Pid::from_raw(pid))
                    .map(|()| Some(ToChild::ForkSeen)),
                // sync 4
                Request::RunCreateHooks => parent
                    .run_create_hooks()
                    .map(|pid| Some(ToChild::CreateHooksRan { pid })),
                // sync 5
                Request::Ready => parent.ready().map(|()| Some(ToChild::StateSaved)),
                // sync 6
                Request::SetRlimits => parent.set_rlimits().map(|()| Some(ToChild::RlimitsSet)),
                // sync 7
                Request::SeccompListener => {
                    let listener = self
                        .channel
                        .take_fd()
                        .context("sync protocol error: SeccompListener came without an fd")?;
                    parent.seccomp_listener(listener).map(|()| None)
                }
                // sync 8: the channel's closing, next, says the program runs.
                Request::Exec => Ok(None),
            }?;
            if let Some(reply) = reply {
                // A child that closed its end cannot take the reply; what it sent before, and its closing, are
                // read next.
                match self.channel.send(&reply, None) {
                    Err(err) if !peer_closed(&err) => return Err(err),
                    _ => {}
                }
            }
        }
    }
}

/// Whether a send failed because the peer has closed its end.
fn peer_closed(err: &anyhow::Error) -> bool {
    matches!(
        err.root_cause().downcast_ref::<nix::errno::Errno>(),
        Some(nix::errno::Errno::EPIPE | nix::errno::Errno::ECONNRESET)
    )
}

/// `text` cut to [`MAX_CAUSE_LEN`] bytes around a marker that says how much was left out: its start and its end
/// (where an error's own cause usually is) stay.
fn shorten(text: String) -> String {
    if text.len() <= MAX_CAUSE_LEN {
        return text;
    }
    let floor = |mut at: usize| {
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let head = floor(MAX_CAUSE_LEN * 3 / 4);
    let tail = floor(text.len() - MAX_CAUSE_LEN / 5);
    format!(
        "{} [... {} bytes ...] {}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

#[cfg(test)]
mod tests;
