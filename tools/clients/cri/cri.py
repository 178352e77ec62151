#!/usr/bin/python3
"""The Kubernetes CRI path, as kubelet drives it: a small CRI client (runtime.v1 over containerd's socket) runs a
pod sandbox with the given runtime handler, then creates, starts, execs in, stops and removes containers in it.
cri-tools (crictl) is not packaged in Debian 12, so this stands in for it. Prints one line per scenario, like
tools/test-clients.sh, and writes the pod's and containers' ids to WORK/ids for its leftover check.

    cri.py --socket SOCK --handler NAME --image IMAGE --work DIR --label LABEL [--systemd-cgroup]

With --systemd-cgroup the pod's cgroup parent is a systemd slice, as kubelet's systemd cgroup driver names it
(`kubepods-besteffort-pod<uid>.slice`), for a containerd whose runtime has `SystemdCgroup = true`: each container is
then the scope `cri-containerd-<id>.scope` in that slice.
"""
import argparse
import os
import subprocess
import sys
import time
import uuid

import grpc


def generated_api(work):
    """runtime.v1 messages from api.proto (a field-exact subset of kubernetes/cri-api), compiled with protoc."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(work, "gen")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["protoc", "-I", here, "--python_out", out, os.path.join(here, "api.proto")], check=True)
    sys.path.insert(0, out)
    import api_pb2  # noqa: E402 (generated just above)
    return api_pb2


class Report:
    def __init__(self, label):
        self.label, self.failed = label, 0

    def line(self, text):
        print(text, flush=True)

    def expect(self, name, want, seen):
        ok = want(seen) if callable(want) else seen == want
        if ok:
            self.line(f"ok   {self.label} {name}")
        else:
            self.failed += 1
            shown = "(a condition)" if callable(want) else repr(want)
            self.line(f"FAIL {self.label} {name}: expected {shown}, saw {seen!r}")
        return ok


class Cri:
    def __init__(self, socket, pb):
        self.pb = pb
        self.channel = grpc.insecure_channel(f"unix://{socket}")

    def call(self, service, method, request, timeout=60):
        response_type = getattr(self.pb, method + "Response")
        stub = self.channel.unary_unary(
            f"/runtime.v1.{service}/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return stub(request, timeout=timeout)

    def runtime(self, method, **fields):
        return self.call("RuntimeService", method, getattr(self.pb, method + "Request")(**fields))

    def image(self, method, **fields):
        return self.call("ImageService", method, getattr(self.pb, method + "Request")(**fields))


def error_of(call):
    """The gRPC error message of a call expected to fail, or 'succeeded'."""
    try:
        call()
        return "succeeded"
    except grpc.RpcError as err:
        return err.details()


def wait_until(check, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    return None


def expand_slice(slice_name):
    """systemd nests a slice by its dashes: a-b.slice is /a.slice/a-b.slice."""
    parts = slice_name[: -len(".slice")].split("-")
    return "".join("/" + "-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def cgroup_limit(cgroup_path):
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        path = f"/sys/fs/cgroup{cgroup_path}/memory.max"
    else:
        path = f"/sys/fs/cgroup/memory{cgroup_path}/memory.limit_in_bytes"
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as err:
        return str(err)


def main():
    parser = argparse.ArgumentParser()
    for flag in ("socket", "handler", "image", "work", "label"):
        parser.add_argument("--" + flag, required=True)
    parser.add_argument("--systemd-cgroup", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    pb = generated_api(args.work)
    report = Report(args.label)
    args.pod_uid = uuid.uuid4().hex
    if args.systemd_cgroup:
        args.cgroup_parent = f"kubepods-besteffort-pod{args.pod_uid}.slice"
    else:
        args.cgroup_parent = f"/hull-cri-{args.handler}"
    try:
        return scenarios(args, pb, report)
    except grpc.RpcError as err:
        report.expect("cri-call", "success", f"{err.code().name}: {err.details()}")
    except Exception as err:  # a broken step is reported as a failure line, not a traceback
        report.expect("cri-client", "success", f"{type(err).__name__}: {err}")
    finally:
        if args.systemd_cgroup:
            # kubelet removes a pod's slice once the pod is gone (here also when a scenario failed).
            subprocess.run(["systemctl", "stop", args.cgroup_parent], check=False)
    return 1


def scenarios(args, pb, report):
    cri = Cri(args.socket, pb)
    ids = open(os.path.join(args.work, "ids"), "w")

    version = wait_until(lambda: _try(lambda: cri.runtime("Version", version="v1")))
    report.expect("version", "containerd", version.runtime_name if version else "no answer")
    status = cri.image("ImageStatus", image=pb.ImageSpec(image=args.image))
    report.expect("image-status", [args.image], list(status.image.repo_tags))

    host_namespaces = pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD)
    logs = os.path.join(args.work, "logs")
    cgroup_parent = args.cgroup_parent
    sandbox = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="pod", uid=args.pod_uid, namespace="hull-clients"),
        log_directory=logs,
        dns_config=pb.DNSConfig(servers=["127.0.0.1"]),
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=cgroup_parent,
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=host_namespaces),
        ),
    )
    pod = cri.runtime("RunPodSandbox", config=sandbox, runtime_handler=args.handler).pod_sandbox_id
    print(pod, file=ids, flush=True)
    state = cri.runtime("PodSandboxStatus", pod_sandbox_id=pod).status.state
    report.expect("run-pod-sandbox", pb.SANDBOX_READY, state)

    def container(name, command, memory=0):
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name),
            image=pb.ImageSpec(image=args.image),
            command=command,
            envs=[pb.KeyValue(key="GREETING", value="hello from cri")],
            working_dir="/tmp",
            log_path=f"{name}.log",
            linux=pb.LinuxContainerConfig(
                resources=pb.LinuxContainerResources(memory_limit_in_bytes=memory),
                security_context=pb.LinuxContainerSecurityContext(namespace_options=host_namespaces),
            ),
        )
        cid = cri.runtime("CreateContainer", pod_sandbox_id=pod, config=config, sandbox_config=sandbox).container_id
        print(cid, file=ids, flush=True)
        return cid

    def container_status(cid):
        return cri.runtime("ContainerStatus", container_id=cid).status

    def log_lines(name):
        try:
            with open(os.path.join(logs, f"{name}.log")) as f:
                return [line.rstrip("\n").split(" ", 3)[1:] for line in f]
        except OSError:
            return []

    server = container("server", ["sh", "-c",
                                  'trap "echo got TERM; exit 0" TERM; echo "$GREETING in $PWD"; '
                                  "while :; do sleep 0.1; done"], memory=64 << 20)
    cri.runtime("StartContainer", container_id=server)
    report.expect("start-container", pb.CONTAINER_RUNNING, container_status(server).state)
    wait_until(lambda: log_lines("server"), 10)
    report.expect("container-log", [["stdout", "F", "hello from cri in /tmp"]], log_lines("server"))
    if args.systemd_cgroup:
        server_cgroup = f"{expand_slice(cgroup_parent)}/cri-containerd-{server}.scope"
    else:
        server_cgroup = f"{cgroup_parent}/{server}"
    report.expect("memory-limit", str(64 << 20), cgroup_limit(server_cgroup))

    result = cri.runtime("ExecSync", container_id=server, cmd=["sh", "-c", "echo out; echo err >&2; exit 3"],
                         timeout=30)
    report.expect("exec-sync", (b"out\n", b"err\n", 3), (result.stdout, result.stderr, result.exit_code))

    cri.runtime("StopContainer", container_id=server, timeout=10)
    final = container_status(server)
    report.expect("stop-container", (pb.CONTAINER_EXITED, 0, "Completed"),
                  (final.state, final.exit_code, final.reason))
    wait_until(lambda: len(log_lines("server")) > 1, 10)
    report.expect("sigterm-log", ["stdout", "F", "got TERM"], (log_lines("server") + [None, None])[1])

    oneshot = container("oneshot", ["sh", "-c", "exit 5"])
    cri.runtime("StartContainer", container_id=oneshot)
    done = wait_until(lambda: container_status(oneshot).state == pb.CONTAINER_EXITED and
                      container_status(oneshot))
    report.expect("exit-code", (5, "Error"), (done.exit_code, done.reason) if done else "still running")

    bad = container("bad", ["/nonexistent"])
    seen = error_of(lambda: cri.runtime("StartContainer", container_id=bad))
    report.expect("bad-entrypoint",
                  lambda s: "OCI runtime create failed" in s and "no such file or directory" in s
                  or 'exec: "/nonexistent"' in s and "no such file or directory" in s, seen)

    for cid in (server, oneshot, bad):
        cri.runtime("RemoveContainer", container_id=cid)
    cri.runtime("StopPodSandbox", pod_sandbox_id=pod)
    cri.runtime("RemovePodSandbox", pod_sandbox_id=pod)
    remaining = cri.runtime("ListContainers", filter=pb.ContainerFilter(pod_sandbox_id=pod)).containers
    report.expect("remove", [], list(remaining))
    return 1 if report.failed else 0


def _try(call):
    try:
        return call()
    except grpc.RpcError:
        return None


if __name__ == "__main__":
    sys.exit(main())
