#!/usr/bin/env python3
"""peerscope capture and --replay: a capture-then-replay round trip gives the same doctor,
topo and plan output as the machine it was taken on; hostile archives (absolute paths, ..,
symlinks out, hard links, devices, too many members, a huge member) are refused with exit 3
and a one-line message naming the archive and the member, and nothing is left behind; a
capture repacked with `tar czf x -C dir .` is accepted; SIGINT, SIGTERM or SIGHUP during a
replay leave no extracted directory."""
import atexit
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

CLI = os.environ["PEERSCOPE_CLI"]
FIXTURES = os.environ["PEERSCOPE_FIXTURES"]
TREE = os.path.join(FIXTURES, "sysfs", "acs-switch-on")
MACHINE = os.path.join(TREE, "machine.topo")

results = {"passed": 0, "failed": 0}
TMP = tempfile.mkdtemp(prefix="peerscope-capture-test-")
atexit.register(shutil.rmtree, TMP, True)
# Replays extract under $TMPDIR: a directory of our own, to see that nothing stays there.
SCRATCH = os.path.join(TMP, "scratch")
os.makedirs(SCRATCH)


def check(name, condition, detail=""):
    if condition:
        results["passed"] += 1
    else:
        results["failed"] += 1
        print("FAIL %s %s" % (name, detail))


def run(args, env_extra=None, cwd=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("NCCL_", "VLLM_", "CUDA_", "PEERSCOPE_FIXTURE",
                                "PEERSCOPE_DRIVER_DIR", "PEERSCOPE_SYSFS_ROOT"))}
    env["PEERSCOPE_CACHE_DIR"] = os.path.join(TMP, "cache")
    env["PEERSCOPE_VERIFY_SEED"] = "5eed"
    env["TMPDIR"] = SCRATCH
    env.update(env_extra or {})
    return subprocess.run([CLI] + args, capture_output=True, text=True, timeout=120, env=env,
                          cwd=cwd or TMP)


def strip_paths(text, *roots):
    for root in roots:
        text = text.replace(root + ":", "<root>").replace(root, "<root>")
    # The first two lines name the source and the root: checked on their own.
    return "\n".join(line for line in text.splitlines()
                     if not line.startswith(("peerscope doctor: ", "sysfs and /proc read")))


def capture(name, extra=()):
    out = os.path.join(TMP, name)
    proc = run(["capture", "--fixture", MACHINE, "--sysfs-root", TREE] + list(extra) + [out])
    check("capture %s" % name, proc.returncode == 0 and os.path.exists(out),
          proc.stdout + proc.stderr)
    return out


def test_round_trip():
    archive = capture("machine.tar.gz")
    live = run(["doctor", "--fixture", MACHINE, "--sysfs-root", TREE])
    replay = run(["doctor", "--replay", archive])
    check("doctor replay exit", replay.returncode == live.returncode == 1,
          "%d %d %s" % (live.returncode, replay.returncode, replay.stderr))
    check("doctor replay equals doctor", strip_paths(live.stdout, TREE) ==
          strip_paths(replay.stdout, archive), replay.stdout)
    check("doctor replay says file", ", file %s\n" % archive in replay.stdout, replay.stdout)
    check("doctor replay names the archive as root",
          "sysfs and /proc read under %s:/\n" % archive in replay.stdout, replay.stdout)
    check("no temporary dir left", os.listdir(SCRATCH) == [], os.listdir(SCRATCH))
    live = run(["doctor", "--json", "--fixture", MACHINE, "--sysfs-root", TREE])
    replay = run(["doctor", "--json", "--replay", archive])
    check("doctor json replay", '"code": "acs-redirect"' in replay.stdout and
          replay.stdout.count('"code"') == live.stdout.count('"code"'), replay.stdout)

    # The fixture hangs 0 -> 1: the replay shows the recorded verdicts, it does not re-run.
    live = run(["topo", "--fixture", MACHINE])
    replay = run(["topo", "--replay", archive])
    check("topo replay equals topo", live.stdout == replay.stdout and
          live.returncode == replay.returncode, replay.stdout + replay.stderr)
    check("topo replay shows the hang", "HANG" in replay.stdout, replay.stdout)

    report = os.path.join(TMP, "report.json")
    with open(report, "w") as f:
        f.write(run(["topo", "--json", "--fixture", MACHINE]).stdout)
    plan_args = ["plan", "--model-size-gb", "20"]
    direct = run(plan_args + ["--topology", report])
    replay = run(plan_args + ["--topology", archive])
    check("plan on a capture", direct.returncode == replay.returncode == 0 and
          direct.stdout.replace(report, "<t>") == replay.stdout.replace(archive, "<t>"),
          direct.stdout + "\n---\n" + replay.stdout + replay.stderr)
    check("no temporary dir left after plan", os.listdir(SCRATCH) == [], os.listdir(SCRATCH))


def test_without_sysfs():
    fixture = os.path.join(FIXTURES, "fault-corrupt.topo")
    archive = os.path.join(TMP, "nosysfs.tar.gz")
    proc = run(["capture", "--fixture", fixture, archive])
    check("capture without sysfs", proc.returncode == 0, proc.stderr)
    live = run(["doctor", "--fixture", fixture])
    replay = run(["doctor", "--replay", archive])
    check("doctor replay without sysfs", live.returncode == replay.returncode and
          strip_paths(live.stdout) == strip_paths(replay.stdout),
          live.stdout + "\n---\n" + replay.stdout + replay.stderr)
    live = run(["topo", "--fixture", fixture])
    replay = run(["topo", "--replay", archive])
    check("topo replay of a corrupt pair", live.stdout == replay.stdout and
          live.returncode == replay.returncode == 1, replay.stdout + replay.stderr)


def test_contents():
    archive = capture("contents.tar.gz")
    with tarfile.open(archive) as t:
        names = t.getnames()
        env = t.extractfile("env.txt").read().decode()
        report = t.extractfile("report.json").read().decode()
    check("report and fixture", "report.json" in names and "machine.topo" in names, names)
    check("bridge config recorded",
          any(n.endswith("0000:02:08.0/config") for n in names), names)
    check("GPU and root port config recorded",
          any(n.endswith("0000:03:00.0/config") for n in names) and
          "root/sys/devices/pci0000:00/0000:00:01.0/config" in names, names)
    check("no environment recorded when none set", env == "", env)
    check("no hostname", '"hostname": null' in report or '"hostname": ""' in report or
          "hostname" not in report, report[:400])
    host = socket.gethostname()
    archive = capture("host.tar.gz")
    with tarfile.open(archive) as t:
        texts = [t.extractfile(m).read().decode(errors="replace")
                 for m in t.getmembers() if m.isfile()]
    check("hostname nowhere", len(host) < 3 or not any(host in text for text in texts), host)
    archive = capture("keep.tar.gz", ["--keep-hostname"])
    with tarfile.open(archive) as t:
        report = t.extractfile("report.json").read().decode()
    check("--keep-hostname keeps it", host in report, report[:600])
    archive = capture("env.tar.gz")
    proc = run(["capture", "--fixture", MACHINE, "--sysfs-root", TREE, archive],
               env_extra={"NCCL_P2P_DISABLE": "1", "SECRET_TOKEN": "x"})
    with tarfile.open(archive) as t:
        env = t.extractfile("env.txt").read().decode()
    check("doctor variables only", env == "NCCL_P2P_DISABLE=1\n", env)


def add(t, name, kind=tarfile.REGTYPE, data=b"", **kw):
    info = tarfile.TarInfo(name)
    info.type = kind
    for k, v in kw.items():
        setattr(info, k, v)
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    else:
        t.addfile(info)


def hostile(name, build):
    path = os.path.join(TMP, name + ".tar.gz")
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as t:
        add(t, "peerscope-capture.txt", data=b"peerscope-capture 1\n")
        build(t)
    return path


def huge(path):
    # A header claiming 1 GiB with no data behind it.
    info = tarfile.TarInfo("root/big")
    info.size = 1 << 30
    import gzip
    with gzip.open(path, "wb") as g:
        head = tarfile.TarInfo("peerscope-capture.txt")
        head.size = 20
        g.write(head.tobuf(tarfile.USTAR_FORMAT) + b"peerscope-capture 1\n".ljust(512, b"\0"))
        g.write(info.tobuf(tarfile.USTAR_FORMAT))


def test_hostile():
    cases = {
        "absolute": (lambda t: add(t, "/tmp/peerscope-evil", data=b"x"), "peerscope-evil"),
        "dotdot": (lambda t: add(t, "root/../../evil", data=b"x"), "evil"),
        "symlink-out": (lambda t: add(t, "root/etc", tarfile.SYMTYPE, linkname="/etc"),
                        "root/etc"),
        "symlink-up": (lambda t: add(t, "root/up", tarfile.SYMTYPE, linkname="../../.."),
                       "root/up"),
        "symlink-chain": (lambda t: (add(t, "a/b/s", tarfile.SYMTYPE, linkname="../.."),
                                     add(t, "a/b/t", tarfile.SYMTYPE, linkname="s/../x")),
                          "a/b/t"),
        "hardlink": (lambda t: add(t, "root/h", tarfile.LNKTYPE, linkname="report.json"),
                     "root/h"),
        "device": (lambda t: add(t, "root/dev", tarfile.CHRTYPE, devmajor=1, devminor=3),
                   "root/dev"),
        "fifo": (lambda t: add(t, "root/fifo", tarfile.FIFOTYPE), "root/fifo"),
        "newline": (lambda t: add(t, "root/a\nb", tarfile.CHRTYPE), "root/a?b"),
        "members": (lambda t: [add(t, "root/m%05d" % i, data=b"") for i in range(10001)],
                    "root/m09999"),  # the manifest is member 1
    }
    paths = {k: (hostile(k, b), member) for k, (b, member) in cases.items()}
    big = os.path.join(TMP, "huge.tar.gz")
    huge(big)
    paths["huge"] = (big, "root/big")
    bad = os.path.join(TMP, "garbage.tar.gz")
    with open(bad, "wb") as f:
        f.write(b"\x1f\x8bnot really gzip")
    paths["garbage"] = (bad, "")
    cwd = os.path.join(TMP, "cwd")
    os.makedirs(cwd)
    # The replays' temporary roots go under SCRATCH ($TMPDIR); its parent is TMP. (Not /tmp
    # itself: tests running beside this one make their own directories there.)
    before_tmp = set(os.listdir(TMP))
    for name, (path, member) in sorted(paths.items()):
        for cmd in (["doctor", "--replay", path], ["topo", "--replay", path],
                    ["plan", "--model-size-gb", "1", "--topology", path]):
            proc = run(cmd, cwd=cwd)
            err = proc.stderr.strip()
            check("%s %s refused" % (name, cmd[0]), proc.returncode == 3 and
                  len(err.splitlines()) == 1 and path in err and member in err,
                  "rc=%d %r" % (proc.returncode, err))
        check("%s leaves nothing" % name, os.listdir(SCRATCH) == [] and os.listdir(cwd) == [],
              "%s %s" % (os.listdir(SCRATCH), os.listdir(cwd)))
    check("nothing beside the temporary roots", set(os.listdir(TMP)) == before_tmp,
          set(os.listdir(TMP)) ^ before_tmp)
    check("nothing written to /tmp/peerscope-evil", not os.path.exists("/tmp/peerscope-evil"))
    check("nothing written above the scratch dir", not os.path.exists(os.path.join(TMP, "evil")) and
          not os.path.exists(os.path.join(TMP, "x")))


def repacked(name, pad_members=0):
    """The capture unpacked and packed again as `tar czf x -C dir .` does: a "./" entry first,
    every name "./"-prefixed; pad_members members of 16 MiB of zeros make extraction slow."""
    archive = capture(name + "-orig.tar.gz")
    unpacked = os.path.join(TMP, name + "-dir")
    os.makedirs(os.path.join(unpacked, "pad"))
    subprocess.run(["tar", "xzf", archive, "-C", unpacked], check=True)
    for i in range(pad_members):
        with open(os.path.join(unpacked, "pad", "%02d" % i), "wb") as f:
            f.truncate(16 << 20)
    path = os.path.join(TMP, name + ".tar.gz")
    subprocess.run(["tar", "czf", path, "-C", unpacked, "."], check=True)
    shutil.rmtree(unpacked)
    return path


def test_repacked():
    path = repacked("repacked")
    with tarfile.open(path) as t:
        names = t.getnames()
    check("repacked has ./ entries", names[0] == "." and all(n.startswith("./") for n in names[1:]),
          names[:3])  # Python's tarfile shows the "./" entry as "."
    proc = run(["doctor", "--replay", path])
    check("repacked capture accepted", proc.returncode == 1 and "acs-switch-on" in proc.stdout,
          "rc=%d %s" % (proc.returncode, proc.stderr))
    check("repacked leaves nothing", os.listdir(SCRATCH) == [], os.listdir(SCRATCH))


def test_signals():
    # 192 MiB to write: the signal arrives while the extraction (or the replay after it) runs,
    # and the handler removes the directory before the process dies of the signal.
    path = repacked("padded", pad_members=12)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEERSCOPE_FIXTURE")}
    env["TMPDIR"] = SCRATCH
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        for attempt in range(3):
            proc = subprocess.Popen([CLI, "doctor", "--replay", path], env=env, cwd=TMP,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while not os.listdir(SCRATCH) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.001)
            seen = os.listdir(SCRATCH)
            if proc.poll() is None:
                break
            proc.wait()
        check("%s: extraction seen running" % sig.name, seen and proc.poll() is None, seen)
        proc.send_signal(sig)
        rc = proc.wait(timeout=60)
        check("%s: died of it" % sig.name, rc == -sig, rc)
        check("%s: nothing left" % sig.name, os.listdir(SCRATCH) == [], os.listdir(SCRATCH))
        for leftover in os.listdir(SCRATCH):
            shutil.rmtree(os.path.join(SCRATCH, leftover), True)
    os.unlink(path)


def test_usage():
    proc = run(["capture"])
    check("capture needs a file", proc.returncode == 2, proc.stderr)
    proc = run(["doctor", "--replay", os.path.join(TMP, "missing.tar.gz")])
    check("missing archive", proc.returncode == 3 and "missing.tar.gz" in proc.stderr,
          proc.stderr)
    proc = run(["doctor", "--replay", "x.tar.gz", "--sysfs-root", TREE])
    check("replay with sysfs root", proc.returncode == 2, proc.stderr)


def main():
    for test in (test_round_trip, test_without_sysfs, test_contents, test_hostile, test_repacked,
                 test_signals, test_usage):
        test()
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
