#!/usr/bin/env python3
"""Reference oracle for shoal's interoperability tests, built on libtorrent.

Subcommands (each prints exactly one JSON object on stdout):

  info TORRENT                     what libtorrent reads from a .torrent file
  check TORRENT SAVE_PATH          whether libtorrent accepts the data on disk,
                                   once per hash version for hybrid torrents
  make --mode M [--piece-size N] SRC OUT
                                   a torrent created by libtorrent itself

Failures exit non-zero with a one-line message on stderr. Needs libtorrent 2.x
(Debian: python3-libtorrent, run with /usr/bin/python3).
"""

import argparse
import json
import os
import sys
import time

try:
    import libtorrent as lt
except ImportError as exc:
    sys.exit(f"lt_driver: cannot import libtorrent ({exc}); "
             "install python3-libtorrent and run with /usr/bin/python3")

TRACKER = "http://127.0.0.1:6969/announce"
CHECK_TIMEOUT_SECONDS = 120


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
    ct.add_tracker(TRACKER)
    lt.set_piece_hashes(ct, os.path.dirname(src))
    with open(args.out, "wb") as f:
        f.write(lt.bencode(ct.generate()))
    _, ti, _ = load_torrent(args.out)
    v1, v2 = hex_hashes(ti)
    return {"out": args.out, "info_hash_v1": v1, "info_hash_v2": v2}


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
    make.add_argument("src")
    make.add_argument("out")
    make.set_defaults(run=cmd_make)
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    try:
        result = args.run(args)
    except (DriverError, OSError, RuntimeError) as exc:
        print(f"lt_driver {args.command}: {exc}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
