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
Ends at the end of stdin.

Needs python3-dbus and python3-gi (Debian packages).
"""
import base64
import json
import sys

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
        path = str(service) if str(service).startswith("/") else "/StatusNotifierItem"
        name = str(sender) if str(service).startswith("/") else str(service)
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


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SessionBus()
    notifications = Notifications(bus)
    watcher = Watcher(bus)
    names = [dbus.service.BusName(NOTIFY, bus, do_not_queue=True),
             dbus.service.BusName(WATCHER, bus, do_not_queue=True)]
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
            notifications.ActionInvoked(dbus.UInt32(int(words[1])), words[2])
        elif len(words) == 2 and words[0] == "icon":
            icon(words[1])
        return True

    GLib.io_add_watch(sys.stdin, GLib.IO_IN | GLib.IO_HUP, on_stdin)
    report(ev="ready")
    loop.run()
    del names


if __name__ == "__main__":
    main()
