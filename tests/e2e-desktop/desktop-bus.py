#!/usr/bin/env python3
"""The desktop services of a session bus, for tests/e2e-desktop/calls.mjs: a notification server
(org.freedesktop.Notifications, Desktop Notifications Specification 1.2) and a StatusNotifier
watcher (org.kde.StatusNotifierWatcher) that the app's tray icon (libayatana-appindicator)
registers with. Runs on the private session bus of run.sh (dbus-run-session).

Reports on stdout, one JSON object a line:
  {"ev": "ready"}
  {"ev": "notify", "id": N, "app": ..., "summary": ..., "body": ..., "actions": [...]}
  {"ev": "closed", "id": N}
  {"ev": "item", "service": ..., "path": ...}            (a tray icon registered)
  {"ev": "icon", "tag": T, "path": ..., "label": ..., "png": BASE64 or null, "error": ...}
Commands on stdin, one a line:
  invoke ID ACTION     emit ActionInvoked(ID, ACTION) as if the user clicked the button
  icon TAG             read IconName (the picture's file) and the label of the registered item
  displayed TAG        {"ev": "displayed", "tag": TAG, "count": N}: notifications on screen
                       (--dunst only)
Ends at the end of stdin.

With `--tray-host WORKDIR` the StatusNotifier watcher is a real one: gtk-sni-tray-standalone
(Debian's haskell-gtk-sni-tray-utils), started here with its own watcher; it is also a tray host
that draws the registered icons in a bar at the bottom of the X display (background #202020)
and opens an item's menu (dbusmenu) when the icon is clicked. This script then only listens to
that watcher (StatusNotifierItemRegistered, RegisteredStatusNotifierItems) to report "item" and
to find the item that `icon` reads. Without it, the stand-in watcher below takes the name.

With `--dunst WORKDIR` the notification server is a real one: dunst (Debian's package), drawing
its pop-ups on the X display. It is started here, on the session bus, with a configuration in
WORKDIR; this script then watches the bus (org.freedesktop.DBus.Monitoring.BecomeMonitor) and
reports the app's Notify / CloseNotification calls as above, with the id dunst answered. `invoke`
then goes through dunst's own action menu: `dunstctl context` runs the menu program of the
configuration, which picks the line of that notification and action, and dunst emits
ActionInvoked itself, as when a user chooses the button.

Needs python3-dbus and python3-gi (Debian packages).
"""
import base64
import json
import os
import subprocess
import sys
import time

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

NOTIFY = "org.freedesktop.Notifications"
WATCHER = "org.kde.StatusNotifierWatcher"
ITEM = "org.kde.StatusNotifierItem"
PROPS = "org.freedesktop.DBus.Properties"


def report(**obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class Notifications(dbus.service.Object):
    def __init__(self, bus):
        super().__init__(bus, "/org/freedesktop/Notifications")
        self.next_id = 1

    @dbus.service.method(NOTIFY, in_signature="", out_signature="as")
    def GetCapabilities(self):
        return ["body", "actions"]

    @dbus.service.method(NOTIFY, in_signature="", out_signature="ssss")
    def GetServerInformation(self):
        return ("webphone-e2e", "webphone", "1", "1.2")

    @dbus.service.method(NOTIFY, in_signature="susssasa{sv}i", out_signature="u")
    def Notify(self, app, replaces, icon, summary, body, actions, hints, timeout):
        nid = int(replaces) or self.next_id
        self.next_id = max(self.next_id, nid) + 1
        report(ev="notify", id=nid, app=str(app), summary=str(summary), body=str(body),
               actions=[str(a) for a in actions])
        return nid

    @dbus.service.method(NOTIFY, in_signature="u", out_signature="")
    def CloseNotification(self, nid):
        report(ev="closed", id=int(nid))
        self.NotificationClosed(nid, 3)

    @dbus.service.signal(NOTIFY, signature="uu")
    def NotificationClosed(self, nid, reason):
        pass

    @dbus.service.signal(NOTIFY, signature="us")
    def ActionInvoked(self, nid, action):
        pass


class Watcher(dbus.service.Object):
    def __init__(self, bus):
        super().__init__(bus, "/StatusNotifierWatcher")
        self.items = []

    @dbus.service.method(WATCHER, in_signature="s", out_signature="", sender_keyword="sender")
    def RegisterStatusNotifierItem(self, service, sender=None):
        # libappindicator passes its object path, others their bus name.
        name, path = parse_item(service, sender)
        self.items.append((name, path))
        report(ev="item", service=name, path=path)
        self.StatusNotifierItemRegistered(name + path)

    @dbus.service.method(WATCHER, in_signature="s", out_signature="")
    def RegisterStatusNotifierHost(self, service):
        pass

    @dbus.service.signal(WATCHER, signature="s")
    def StatusNotifierItemRegistered(self, service):
        pass

    @dbus.service.signal(WATCHER, signature="")
    def StatusNotifierHostRegistered(self):
        pass

    def props(self):
        return {
            "RegisteredStatusNotifierItems": dbus.Array([n + p for n, p in self.items], signature="s"),
            "IsStatusNotifierHostRegistered": dbus.Boolean(True),
            "ProtocolVersion": dbus.Int32(0),
        }

    @dbus.service.method(PROPS, in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        return self.props()[str(name)]

    @dbus.service.method(PROPS, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        return self.props()


def stop_process(proc):
    """Terminates a process this script started, killing it after 3 s."""
    proc.terminate()
    try:
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def parse_item(entry, sender=None):
    """(bus name, object path) of a watcher's item entry: "NAME/PATH" (KDE's form, also used by
    gtk-sni-tray's watcher), "NAME" alone (the item at /StatusNotifierItem), or "/PATH" alone
    (libappindicator's registration argument; the name is then the caller's)."""
    entry = str(entry)
    if entry.startswith("/"):
        return str(sender), entry
    if "/" in entry:
        name, rest = entry.split("/", 1)
        return name, "/" + rest
    return entry, "/StatusNotifierItem"


class TrayHost:
    """gtk-sni-tray-standalone: a real StatusNotifier watcher and tray host on this bus and
    display. Reports the items its watcher registers; `items` as the stand-in's."""

    def __init__(self, bus, workdir):
        os.makedirs(workdir, exist_ok=True)
        self.items = []
        bus_obj = bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus")
        dbus_if = dbus.Interface(bus_obj, "org.freedesktop.DBus")
        if dbus_if.NameHasOwner(WATCHER):
            raise RuntimeError("a StatusNotifier watcher already runs on this bus")
        self.log = open(os.path.join(workdir, "gtk-sni-tray.log"), "wb")
        self.proc = subprocess.Popen(
            ["gtk-sni-tray-standalone", "--watcher", "--bottom", "--size", "32",
             "--color", "#202020"], stdout=self.log, stderr=self.log)
        end = time.time() + 15
        while not dbus_if.NameHasOwner(WATCHER):
            if self.proc.poll() is not None or time.time() > end:
                raise RuntimeError("gtk-sni-tray-standalone did not take the watcher name "
                                   "(see gtk-sni-tray.log)")
            time.sleep(0.05)
        self.watcher = bus.get_object(WATCHER, "/StatusNotifierWatcher")
        bus.add_signal_receiver(self.on_registered, signal_name="StatusNotifierItemRegistered",
                                dbus_interface=WATCHER)
        self.on_registered(None)

    def on_registered(self, _entry):
        # Its RegisteredStatusNotifierItems names only the bus name of an item registered by
        # object path (libappindicator's way); RegisteredSNIEntries has (name, path) pairs.
        entries = self.watcher.Get(WATCHER, "RegisteredSNIEntries", dbus_interface=PROPS)
        for name, path in ((str(n), str(p)) for n, p in entries):
            if (name, path) not in self.items:
                self.items.append((name, path))
                report(ev="item", service=name, path=path, watcher="gtk-sni-tray-standalone")

    def stop(self):
        stop_process(self.proc)


# The menu program dunst runs for `dunstctl context`: its lines look like
# "#Accept (Incoming call) [2,accept]"; it answers the one for the wanted "[ID,ACTION]".
PICK = """#!/bin/sh
dir=$(dirname "$0")
want=$(cat "$dir/want")
tee "$dir/menu" | grep -F -m1 -- "$want" && touch "$dir/picked"
"""

DUNSTRC = """[global]
    dmenu = {pick}
    font = Monospace 10
    markup = full
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[urgency_critical]
    timeout = 0
"""


class Dunst:
    """dunst on the session bus, and a monitor that reports what the app asks of it."""

    def __init__(self, bus, workdir):
        os.makedirs(workdir, exist_ok=True)
        self.dir = workdir
        pick = os.path.join(workdir, "pick.sh")
        with open(pick, "w") as f:
            f.write(PICK)
        os.chmod(pick, 0o755)
        rc = os.path.join(workdir, "dunstrc")
        with open(rc, "w") as f:
            f.write(DUNSTRC.format(pick=pick))
        self.log = open(os.path.join(workdir, "dunst.log"), "wb")
        bus_obj = bus.get_object("org.freedesktop.DBus", "/org/freedesktop/DBus")
        dbus_if = dbus.Interface(bus_obj, "org.freedesktop.DBus")

        def owner_pid():
            try:
                return int(dbus_if.GetConnectionUnixProcessID(NOTIFY))
            except dbus.DBusException:
                return None

        # A notification sent before (an earlier test's app) made the bus start dunst by
        # D-Bus activation, with its default configuration: stop that one (it belongs to
        # this private session bus) so ours, with the menu program above, takes the name.
        if owner_pid() is not None and os.environ.get("E2E_PRIVATE_BUS") != "1":
            raise RuntimeError("a notification server runs on this bus and the bus is not the "
                               "test's own (E2E_PRIVATE_BUS=1): not touching it")
        end = time.time() + 10
        while owner_pid() is not None:
            pid = owner_pid()
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() != "dunst":
                    raise RuntimeError("another notification server (pid %d) holds the name" % pid)
            os.kill(pid, 15)
            time.sleep(0.2)
            if time.time() > end:
                raise RuntimeError("the activated dunst (pid %d) did not stop" % pid)
        self.proc = subprocess.Popen(["dunst", "-config", rc], stdout=self.log, stderr=self.log)
        end = time.time() + 10
        while owner_pid() != self.proc.pid:
            if self.proc.poll() is not None or time.time() > end:
                raise RuntimeError("dunst did not take the notification service name (see dunst.log)")
            time.sleep(0.05)
        info = dbus.Interface(bus.get_object(NOTIFY, "/org/freedesktop/Notifications"), NOTIFY)
        self.server = [str(x) for x in info.GetServerInformation()]
        # A second connection becomes the monitor (it may not send anything afterwards).
        self.mon = dbus.bus.BusConnection(os.environ["DBUS_SESSION_BUS_ADDRESS"])
        self.pending = {}
        self.mon.add_message_filter(self.on_message)
        self.mon.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus",
                               "org.freedesktop.DBus.Monitoring", "BecomeMonitor", "asu",
                               (["type='method_call',interface='%s'" % NOTIFY,
                                 "type='method_return'"], 0))

    def on_message(self, _conn, msg):
        if isinstance(msg, dbus.lowlevel.MethodCallMessage) and msg.get_interface() == NOTIFY:
            args = msg.get_args_list()
            if msg.get_member() == "Notify":
                self.pending[(msg.get_sender(), msg.get_serial())] = args
            elif msg.get_member() == "CloseNotification":
                report(ev="closed", id=int(args[0]))
        elif isinstance(msg, dbus.lowlevel.MethodReturnMessage):
            args = self.pending.pop((msg.get_destination(), msg.get_reply_serial()), None)
            if args is not None:
                app, _replaces, _icon, summary, body, actions = args[:6]
                report(ev="notify", id=int(msg.get_args_list()[0]), app=str(app),
                       summary=str(summary), body=str(body), actions=[str(a) for a in actions],
                       server="dunst")
        # Handled, always: a monitor gets copies of method calls addressed to others, and
        # libdbus would answer an unhandled one with an error, which a monitor may not send
        # (the bus then drops the monitor).
        return dbus.lowlevel.HANDLER_RESULT_HANDLED

    def invoke(self, nid, action):
        """Chooses ACTION of notification NID in dunst's menu. A notification dunst has
        taken but not drawn yet is not in the menu: asked again until it is (5 s)."""
        with open(os.path.join(self.dir, "want"), "w") as f:
            f.write("[%d,%s]" % (nid, action))
        picked = os.path.join(self.dir, "picked")
        menu = os.path.join(self.dir, "menu")
        end = time.time() + 5
        while time.time() < end:
            for f in (picked, menu):
                if os.path.exists(f):
                    os.remove(f)
            # dunst runs the menu program in the background: wait until it has read the menu.
            subprocess.run(["dunstctl", "context"], timeout=10, check=False)
            shown = time.time() + 1
            while time.time() < shown and not os.path.exists(picked):
                time.sleep(0.05)
            if os.path.exists(picked):
                break
            time.sleep(0.2)
        if not os.path.exists(picked):
            last = open(menu).read() if os.path.exists(menu) else "(the menu program never ran)"
            counts = {k: subprocess.run(["dunstctl", "count", k], capture_output=True, text=True,
                                        timeout=10, check=False).stdout.strip()
                      for k in ("displayed", "waiting", "history")}
            paused = subprocess.run(["dunstctl", "is-paused"], capture_output=True, text=True,
                                    timeout=10, check=False).stdout.strip()
            self.log.flush()
            with open(os.path.join(self.dir, "dunst.log"), "rb") as f:
                tail = f.read()[-2000:].decode("utf-8", "replace")
            sys.stderr.write("desktop-bus: [%d,%s] never in dunst's menu; the last menu:\n%s\n"
                             "dunst counts %s, paused %s; dunst's log ends:\n%s\n"
                             % (nid, action, last, counts, paused, tail))

    def displayed(self):
        out = subprocess.run(["dunstctl", "count", "displayed"], capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
        return int(out) if out.isdigit() else -1

    def stop(self):
        stop_process(self.proc)


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    args = sys.argv[1:]
    opts = {}
    while args:
        if args[0] in ("--dunst", "--tray-host") and len(args) >= 2:
            opts[args[0]] = args[1]
            args = args[2:]
        else:
            raise SystemExit("usage: desktop-bus.py [--dunst WORKDIR] [--tray-host WORKDIR]")
    dunst = None
    names = []
    if "--dunst" in opts:
        dunst = Dunst(bus, opts["--dunst"])
        notifications = None
    else:
        notifications = Notifications(bus)
        names.append(dbus.service.BusName(NOTIFY, bus, do_not_queue=True))
    if "--tray-host" in opts:
        watcher = TrayHost(bus, opts["--tray-host"])
    else:
        names.append(dbus.service.BusName(WATCHER, bus, do_not_queue=True))
        watcher = Watcher(bus)
    loop = GLib.MainLoop()

    def icon(tag):
        if not watcher.items:
            report(ev="icon", tag=tag, path=None, label=None, png=None, error="no item registered")
            return
        name, path = watcher.items[-1]
        try:
            item = bus.get_object(name, path)
            file = str(item.Get(ITEM, "IconName", dbus_interface=PROPS))
            try:
                label = str(item.Get(ITEM, "XAyatanaLabel", dbus_interface=PROPS))
            except dbus.DBusException:
                label = None
            with open(file, "rb") as f:
                png = base64.b64encode(f.read()).decode()
            report(ev="icon", tag=tag, path=file, label=label, png=png, error=None)
        except (dbus.DBusException, OSError) as e:
            report(ev="icon", tag=tag, path=None, label=None, png=None, error=str(e))

    def on_stdin(source, condition):
        line = source.readline()
        if not line:
            loop.quit()
            return False
        words = line.split()
        if len(words) == 3 and words[0] == "invoke":
            if dunst:
                dunst.invoke(int(words[1]), words[2])
            else:
                notifications.ActionInvoked(dbus.UInt32(int(words[1])), words[2])
        elif len(words) == 2 and words[0] == "icon":
            icon(words[1])
        elif len(words) == 2 and words[0] == "displayed":
            report(ev="displayed", tag=words[1], count=dunst.displayed() if dunst else -1)
        return True

    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_stdin)
    report(ev="ready", server=dunst.server if dunst else None,
           watcher="gtk-sni-tray-standalone" if isinstance(watcher, TrayHost) else "stand-in")
    try:
        loop.run()
    finally:
        if dunst:
            dunst.stop()
        if isinstance(watcher, TrayHost):
            watcher.stop()
    del names


if __name__ == "__main__":
    main()
