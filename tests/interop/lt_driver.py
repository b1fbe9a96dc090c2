#!/usr/bin/env python3
"""Reference oracle for shoal's interoperability tests, built on libtorrent.

Subcommands (each prints exactly one JSON object on stdout):

  info TORRENT                     what libtorrent reads from a .torrent file
  check TORRENT SAVE_PATH          whether libtorrent accepts the data on disk,
                                   once per hash version for hybrid torrents
  make --mode M [--piece-size N] [--announce URL] SRC OUT
                                   a torrent created by libtorrent itself

Long-running roles, for swarm tests against other clients. They use plain
TCP on 127.0.0.1 only (no DHT, LSD, UPnP, NAT-PMP or uTP), log connections
and errors on stderr, stop cleanly on SIGTERM or SIGINT, and give up after
--timeout seconds:

  seed TORRENT SAVE_PATH [--listen-port P] [--peer HOST:PORT]...
                                   hash-checks the data, fails unless every
                                   piece is valid, prints {"listening": PORT}
                                   once it accepts peers, then seeds (exit 0
                                   on SIGTERM; non-zero on --timeout)
  download TORRENT SAVE_PATH [--peer HOST:PORT]... [--listen-port P]
                                   downloads from the given peers (and the
                                   torrent's trackers), prints
                                   {"complete": true, "seconds", ...} once
                                   every piece is verified; with
                                   --keep-seeding it then seeds until SIGTERM

Both roles take --listen-ip ADDR (default 127.0.0.1) to bind another local
address, e.g. a network namespace's own (bench/ runs one per host).

Failures exit non-zero with a one-line message on stderr. Needs libtorrent 2.x
(Debian: python3-libtorrent, run with /usr/bin/python3).
"""

import argparse
import json
import os
import signal
import sys
import time

try:
    import libtorrent as lt
except ImportError as exc:
    sys.exit(f"lt_driver: cannot import libtorrent ({exc}); "
             "install python3-libtorrent and run with /usr/bin/python3")

TRACKER = "http://127.0.0.1:6969/announce"
CHECK_TIMEOUT_SECONDS = 120
SWARM_TIMEOUT_SECONDS = 300
# How often a downloader with no connected peer dials the --peer list again:
# the other side may still be starting, and libtorrent itself waits
# min_reconnect_time before retrying a peer that failed.
REDIAL_SECONDS = 2


class DriverError(Exception):
    """A failure worth reporting to the caller as a plain message."""


def load_torrent(path):
    """Returns (raw bytes, torrent_info, decoded dict) for a .torrent file."""
    with open(path, "rb") as f:
        raw = f.read()
    decoded = lt.bdecode(raw)
    if not isinstance(decoded, dict) or b"info" not in decoded:
        raise DriverError(f"{path}: not a bencoded torrent dictionary")
    try:
        return raw, lt.torrent_info(raw), decoded
    except RuntimeError as exc:
        raise DriverError(f"{path}: libtorrent rejects the torrent: {exc}")


def hex_hashes(ti):
    hashes = ti.info_hashes()
    v1 = str(hashes.v1).lower() if hashes.has_v1() else None
    v2 = str(hashes.v2).lower() if hashes.has_v2() else None
    return v1, v2


def cmd_info(args):
    _, ti, _ = load_torrent(args.torrent)
    fs = ti.files()
    files = []
    for i in range(fs.num_files()):
        if fs.file_flags(i) & lt.file_storage.flag_pad_file:
            continue
        parts = fs.file_path(i).split(os.sep)
        # libtorrent prefixes every file of a multi-file torrent with the
        # torrent name; a single-file torrent's only path is the bare name.
        if len(parts) > 1:
            parts = parts[1:]
        files.append({"path": "/".join(parts), "size": fs.file_size(i)})
    v1, v2 = hex_hashes(ti)
    return {
        "name": ti.name(),
        "info_hash_v1": v1,
        "info_hash_v2": v2,
        # Content bytes only: libtorrent's own total_size() counts pad files,
        # which are an encoding detail rather than part of the delivery.
        "total_size": sum(f["size"] for f in files),
        "piece_size": ti.piece_length(),
        "num_pieces": ti.num_pieces(),
        "files": files,
    }


def v1_view(decoded):
    """The hybrid torrent as a v1-only client sees it (pad files kept)."""
    view = dict(decoded)
    view.pop(b"piece layers", None)
    info = dict(view[b"info"])
    info.pop(b"file tree", None)
    info.pop(b"meta version", None)
    view[b"info"] = info
    return view


def v2_view(decoded):
    """The hybrid torrent as a v2-only client sees it."""
    view = dict(decoded)
    info = dict(view[b"info"])
    for key in (b"pieces", b"files", b"length"):
        info.pop(key, None)
    view[b"info"] = info
    return view


def offline_session():
    """A session that never touches the network beyond a loopback socket."""
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "alert_mask": lt.alert_category.error | lt.alert_category.status
                      | lt.alert_category.storage,
    })


def check_one(session, torrent_bytes, save_path):
    """Hash-checks SAVE_PATH against one encoding of a torrent."""
    try:
        ti = lt.torrent_info(torrent_bytes)
    except RuntimeError as exc:
        return {"num_pieces": None, "pieces_valid": 0, "is_seed": False,
                "error": f"libtorrent rejects the torrent: {exc}"}
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = save_path
    # Not auto-managed, so the session queue cannot delay the check; paused
    # would skip it, so leave that off too.
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    handle = session.add_torrent(params)
    error = None
    deadline = time.monotonic() + CHECK_TIMEOUT_SECONDS
    done = False
    while not done:
        if time.monotonic() > deadline:
            error = f"checking did not finish in {CHECK_TIMEOUT_SECONDS} s"
            break
        session.wait_for_alert(500)
        for alert in session.pop_alerts():
            if getattr(alert, "handle", None) != handle:
                continue
            if isinstance(alert, lt.torrent_checked_alert):
                done = True
            elif isinstance(alert, (lt.torrent_error_alert,
                                    lt.file_error_alert)):
                error = alert.message()
                done = True
    status = handle.status()
    session.remove_torrent(handle)
    if error is None and status.errc.value() != 0:
        error = status.errc.message()
    return {
        "num_pieces": ti.num_pieces(),
        "pieces_valid": sum(1 for have in status.pieces if have),
        "is_seed": bool(status.is_seeding),
        "error": error,
    }


def cmd_check(args):
    raw, ti, decoded = load_torrent(args.torrent)
    views = {"as_given": raw}
    hashes = ti.info_hashes()
    if hashes.has_v1() and hashes.has_v2():
        views["v1"] = lt.bencode(v1_view(decoded))
        views["v2"] = lt.bencode(v2_view(decoded))
    session = offline_session()
    save_path = os.path.abspath(args.save_path)
    return {"views": {name: check_one(session, data, save_path)
                      for name, data in views.items()}}


def cmd_make(args):
    src = os.path.abspath(args.src)
    if not os.path.exists(src):
        raise DriverError(f"{args.src}: no such file or directory")
    fs = lt.file_storage()
    lt.add_files(fs, src)
    if fs.num_files() == 0:
        raise DriverError(f"{args.src}: no files to add")
    flags = {"hybrid": 0,
             "v1": lt.create_torrent.v1_only,
             "v2": lt.create_torrent.v2_only}[args.mode]
    ct = lt.create_torrent(fs, args.piece_size, flags=flags)
    ct.add_tracker(args.announce)
    lt.set_piece_hashes(ct, os.path.dirname(src))
    with open(args.out, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    _, ti, _ = load_torrent(args.out)
    v1, v2 = hex_hashes(ti)
    return {"out": args.out, "info_hash_v1": v1, "info_hash_v2": v2}


class Stop:
    """Set by SIGTERM or SIGINT; the alert loops poll it between waits."""
    requested = False

    @classmethod
    def install(cls):
        def handler(signum, _frame):
            cls.requested = True
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)


def swarm_session(listen_port, listen_ip="127.0.0.1"):
    """A session for swarm tests: plain TCP on one address, nothing else.

    Every peer in these tests shares the address 127.0.0.1, so libtorrent
    must accept several connections from one IP. uTP is off because the
    tests are about the TCP wire protocol. Outgoing connections skip the
    MSE/PE handshake (libtorrent would otherwise try it first and fall back
    to plaintext only after a failed attempt); incoming ones accept both.
    """
    return lt.session({
        "listen_interfaces": f"{listen_ip}:{listen_port}",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_ip_notifier": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "allow_multiple_connections_per_ip": True,
        "out_enc_policy": int(lt.enc_policy.disabled),
        "in_enc_policy": int(lt.enc_policy.enabled),
        # Rate limits never apply to peers on the local network (the
        # default, pinned here because the tests depend on it).
        "ignore_limits_on_local_network": True,
        "alert_mask": lt.alert_category.error | lt.alert_category.status
                      | lt.alert_category.storage | lt.alert_category.peer
                      | lt.alert_category.connect | lt.alert_category.tracker,
    })


def log(message):
    print(f"lt_driver: {message}", file=sys.stderr, flush=True)


def parse_peer(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def log_alerts(alerts):
    """Copies what helps debug a failed swarm test to stderr."""
    for alert in alerts:
        if isinstance(alert, (lt.peer_connect_alert, lt.peer_disconnected_alert,
                              lt.peer_error_alert, lt.peer_ban_alert,
                              lt.tracker_error_alert, lt.tracker_reply_alert,
                              lt.tracker_warning_alert, lt.torrent_error_alert,
                              lt.file_error_alert, lt.hash_failed_alert,
                              lt.listen_failed_alert, lt.torrent_finished_alert,
                              lt.incoming_connection_alert)):
            log(alert.message())


def add_for_swarm(session, torrent, save_path, deadline):
    """Adds TORRENT, waits for its hash check, returns (handle, torrent_info)."""
    _, ti, _ = load_torrent(torrent)
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = os.path.abspath(save_path)
    # Not auto-managed: the session queue must neither delay the check nor
    # stop seeding at a share ratio.
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    handle = session.add_torrent(params)
    while True:
        if Stop.requested:
            raise DriverError("interrupted while checking")
        if time.monotonic() > deadline:
            raise DriverError("hash check did not finish in time")
        session.wait_for_alert(500)
        alerts = session.pop_alerts()
        log_alerts(alerts)
        for alert in alerts:
            if isinstance(alert, lt.torrent_checked_alert):
                return handle, ti
            if isinstance(alert, (lt.torrent_error_alert, lt.file_error_alert)):
                raise DriverError(f"{torrent}: {alert.message()}")


def listen_port(session):
    port = session.listen_port()
    if port == 0:
        raise DriverError("libtorrent is not listening (see listen errors above)")
    return port


def dial(handle, peers):
    for host, port in peers:
        handle.connect_peer((host, port))


def emit(obj):
    print(json.dumps(obj), flush=True)


def cmd_seed(args):
    Stop.install()
    deadline = time.monotonic() + args.timeout
    session = swarm_session(args.listen_port, args.listen_ip)
    handle, ti = add_for_swarm(session, args.torrent, args.save_path, deadline)
    status = handle.status()
    valid = sum(1 for have in status.pieces if have)
    if not status.is_seeding or valid != ti.num_pieces():
        raise DriverError(f"{args.save_path}: only {valid} of {ti.num_pieces()} "
                          f"pieces are valid; cannot seed")
    emit({"listening": listen_port(session)})
    dial(handle, args.peer)
    while not Stop.requested:
        if time.monotonic() > deadline:
            raise DriverError(f"still seeding after {args.timeout} s; giving up")
        session.wait_for_alert(500)
        log_alerts(session.pop_alerts())
    status = handle.status()
    # Pausing sends the trackers a "stopped" announce, like a clean exit.
    handle.pause()
    time.sleep(0.2)
    log(f"stopped by signal; uploaded {status.total_payload_upload} bytes")
    return None


def cmd_download(args):
    Stop.install()
    started = time.monotonic()
    deadline = started + args.timeout
    session = swarm_session(args.listen_port, args.listen_ip)
    handle, ti = add_for_swarm(session, args.torrent, args.save_path, deadline)
    log(f"listening on {args.listen_ip}:{listen_port(session)}")
    last_dial = 0.0
    while True:
        status = handle.status()
        if status.is_seeding:
            break
        if Stop.requested:
            raise DriverError("interrupted before the download completed")
        now = time.monotonic()
        if now > deadline:
            raise DriverError(
                f"download incomplete after {args.timeout} s: "
                f"{sum(1 for have in status.pieces if have)} of "
                f"{ti.num_pieces()} pieces, {status.total_payload_download} "
                f"bytes received, {status.num_peers} peers connected")
        if args.peer and status.num_peers == 0 and now - last_dial >= REDIAL_SECONDS:
            dial(handle, args.peer)
            last_dial = now
        session.wait_for_alert(500)
        log_alerts(session.pop_alerts())
    status = handle.status()
    result = {
        "complete": True,
        "seconds": round(time.monotonic() - started, 3),
        "total_download": status.total_payload_download,
        "total_size": ti.total_size(),
        "num_pieces": ti.num_pieces(),
    }
    if args.keep_seeding:
        # Report completion now, then share with the rest of the swarm
        # until told to stop (no deadline: the caller owns the lifetime).
        emit(result)
        while not Stop.requested:
            session.wait_for_alert(500)
            log_alerts(session.pop_alerts())
        result = None
    # Leave the swarm politely: pausing sends the trackers a "stopped"
    # announce, so they stop handing out an address nobody listens on.
    handle.pause()
    time.sleep(0.2)
    return result


def cmd_announce(args):
    """Adds TORRENT and reports its first tracker answer: the number of
    peers it got, or the tracker's failure reason."""
    deadline = time.monotonic() + args.timeout
    session = swarm_session(0)
    _, ti, _ = load_torrent(args.torrent)
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = os.path.abspath(args.save_path)
    params.flags &= ~(lt.torrent_flags.auto_managed | lt.torrent_flags.paused)
    session.add_torrent(params)
    while time.monotonic() < deadline:
        session.wait_for_alert(500)
        for alert in session.pop_alerts():
            if isinstance(alert, lt.tracker_reply_alert):
                return {"peers": alert.num_peers}
            if isinstance(alert, lt.tracker_error_alert):
                return {"error": alert.message()}
    raise DriverError("no answer from the tracker in time")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="lt_driver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="describe a .torrent file")
    info.add_argument("torrent")
    info.set_defaults(run=cmd_info)
    check = sub.add_parser("check", help="hash-check data against a torrent")
    check.add_argument("torrent")
    check.add_argument("save_path")
    check.set_defaults(run=cmd_check)
    make = sub.add_parser("make", help="create a torrent with libtorrent")
    make.add_argument("--mode", choices=["hybrid", "v2", "v1"], required=True)
    # 0 lets libtorrent choose, as its own tools do.
    make.add_argument("--piece-size", type=int, default=0)
    make.add_argument("--announce", default=TRACKER, metavar="URL",
                      help=f"tracker announce URL (default {TRACKER})")
    make.add_argument("src")
    make.add_argument("out")
    make.set_defaults(run=cmd_make)
    seed = sub.add_parser("seed", help="seed verified data until stopped")
    download = sub.add_parser("download", help="download from given peers")
    for role in (seed, download):
        role.add_argument("torrent")
        role.add_argument("save_path")
        role.add_argument("--listen-port", type=int, default=0,
                          help="port on the listen address (default: any free port)")
        role.add_argument("--listen-ip", default="127.0.0.1", metavar="ADDR",
                          help="local address to bind (default 127.0.0.1)")
        role.add_argument("--peer", type=parse_peer, action="append",
                          default=[], metavar="HOST:PORT",
                          help="a peer to connect to; repeatable")
        role.add_argument("--timeout", type=float, default=SWARM_TIMEOUT_SECONDS,
                          help="seconds before giving up (default "
                               f"{SWARM_TIMEOUT_SECONDS})")
    download.add_argument("--keep-seeding", action="store_true",
                          help="after printing the completion line, keep "
                               "seeding until SIGTERM or SIGINT")
    seed.set_defaults(run=cmd_seed)
    download.set_defaults(run=cmd_download)
    announce = sub.add_parser("announce", help="announce once, report the answer")
    announce.add_argument("torrent")
    announce.add_argument("save_path")
    announce.add_argument("--timeout", type=float, default=30.0)
    announce.set_defaults(run=cmd_announce)
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    try:
        result = args.run(args)
    except (DriverError, OSError, RuntimeError) as exc:
        print(f"lt_driver {args.command}: {exc}", file=sys.stderr)
        return 1
    if result is not None:
        # One line, so that readers of long-running roles can split on it.
        json.dump(result, sys.stdout)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
