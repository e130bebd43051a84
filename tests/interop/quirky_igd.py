"""quirky_igd.py ADDR LOG - a UPnP IGD with the quirks real routers have and
miniupnpd does not: it serves WANPPPConnection:1 (a PPPoE router), calls
itself not connected, cannot tell its external address (an empty
NewExternalIPAddress), and grants only permanent leases (AddPortMapping with
a lease answers 725 OnlyPermanentLeasesSupported). Every SOAP action is
logged to LOG ("AddPortMapping 41000 UDP 192.0.2.2:41000 lease=0"), so the
test can see what the client asked. For tests/map_quirks_test.sh; SSDP on
239.255.255.250:1900 of the interface holding ADDR."""
import http.server
import re
import socket
import struct
import sys
import threading

ADDR, LOG = sys.argv[1], sys.argv[2]
ST = "urn:schemas-upnp-org:service:WANPPPConnection:1"
mappings = {}


def log(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


DESC = """<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<friendlyName>quirky</friendlyName><UDN>uuid:00000000-0000-0000-0000-000000000001</UDN>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<UDN>uuid:00000000-0000-0000-0000-000000000002</UDN>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANCommonIFC1</serviceId>
<controlURL>/cif</controlURL><eventSubURL>/evt</eventSubURL><SCPDURL>/cif.xml</SCPDURL>
</service></serviceList>
<deviceList><device>
<deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<UDN>uuid:00000000-0000-0000-0000-000000000003</UDN>
<serviceList><service>
<serviceType>""" + ST + """</serviceType>
<serviceId>urn:upnp-org:serviceId:WANPPPConn1</serviceId>
<controlURL>/ctl</controlURL><eventSubURL>/evt2</eventSubURL><SCPDURL>/ppp.xml</SCPDURL>
</service></serviceList>
</device></deviceList>
</device></deviceList>
</device>
</root>
"""


def arg(body, name):
    m = re.search(r"<%s>(.*?)</%s>" % (name, name), body, re.S)
    return m.group(1).strip() if m else ""


def envelope(action, inner):
    return ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
            '<u:%sResponse xmlns:u="%s">%s</u:%sResponse></s:Body></s:Envelope>' % (action, ST, inner, action))


def fault(code, text):
    return ('<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault>'
            '<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>'
            '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>%d</errorCode>'
            '<errorDescription>%s</errorDescription></UPnPError></detail></s:Fault></s:Body></s:Envelope>' % (code, text))


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, status, body, ctype="text/xml"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, DESC if self.path == "/desc.xml" else "<scpd/>")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode(errors="replace")
        action = self.headers.get("SOAPAction", "").strip('"').split("#")[-1]
        if action == "GetStatusInfo":
            return self.reply(200, envelope(action, "<NewConnectionStatus>Disconnected</NewConnectionStatus>"
                                                    "<NewLastConnectionError>ERROR_NONE</NewLastConnectionError>"
                                                    "<NewUptime>0</NewUptime>"))
        if action == "GetExternalIPAddress":
            return self.reply(200, envelope(action, "<NewExternalIPAddress></NewExternalIPAddress>"))
        if action == "AddPortMapping":
            ext, proto = arg(body, "NewExternalPort"), arg(body, "NewProtocol")
            lease = arg(body, "NewLeaseDuration")
            client = arg(body, "NewInternalClient") + ":" + arg(body, "NewInternalPort")
            log("AddPortMapping %s %s %s lease=%s" % (ext, proto, client, lease))
            if lease not in ("", "0"):
                return self.reply(500, fault(725, "OnlyPermanentLeasesSupported"))
            mappings[(ext, proto)] = client
            return self.reply(200, envelope(action, ""))
        if action == "DeletePortMapping":
            ext, proto = arg(body, "NewExternalPort"), arg(body, "NewProtocol")
            log("DeletePortMapping %s %s" % (ext, proto))
            if mappings.pop((ext, proto), None) is None:
                return self.reply(500, fault(714, "NoSuchEntryInArray"))
            return self.reply(200, envelope(action, ""))
        if action == "GetSpecificPortMappingEntry":
            ext, proto = arg(body, "NewExternalPort"), arg(body, "NewProtocol")
            if (ext, proto) not in mappings:
                return self.reply(500, fault(714, "NoSuchEntryInArray"))
            host, port = mappings[(ext, proto)].split(":")
            return self.reply(200, envelope(action, "<NewInternalPort>%s</NewInternalPort><NewInternalClient>%s"
                                                    "</NewInternalClient><NewEnabled>1</NewEnabled>"
                                                    "<NewPortMappingDescription>x</NewPortMappingDescription>"
                                                    "<NewLeaseDuration>0</NewLeaseDuration>" % (port, host)))
        if action == "GetGenericPortMappingEntry":
            i = int(arg(body, "NewPortMappingIndex") or "0")
            items = sorted(mappings.items())
            if i >= len(items):
                return self.reply(500, fault(713, "SpecifiedArrayIndexInvalid"))
            (ext, proto), client = items[i]
            host, port = client.split(":")
            return self.reply(200, envelope(action, "<NewRemoteHost></NewRemoteHost><NewExternalPort>%s"
                                                    "</NewExternalPort><NewProtocol>%s</NewProtocol>"
                                                    "<NewInternalPort>%s</NewInternalPort><NewInternalClient>%s"
                                                    "</NewInternalClient><NewEnabled>1</NewEnabled>"
                                                    "<NewPortMappingDescription>permanent</NewPortMappingDescription>"
                                                    "<NewLeaseDuration>0</NewLeaseDuration>" % (ext, proto, port, host)))
        log("unknown " + action)
        return self.reply(500, fault(401, "Invalid Action"))


httpd = http.server.ThreadingHTTPServer((ADDR, 0), Handler)
port = httpd.server_address[1]
threading.Thread(target=httpd.serve_forever, daemon=True).start()

ssdp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
ssdp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ssdp.bind(("", 1900))
ssdp.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                struct.pack("4s4s", socket.inet_aton("239.255.255.250"), socket.inet_aton(ADDR)))
log("ready http %d" % port)
while True:
    data, peer = ssdp.recvfrom(2048)
    text = data.decode(errors="replace")
    if not text.startswith("M-SEARCH"):
        continue
    m = re.search(r"(?im)^ST:\s*(.+?)\s*$", text)
    st = m.group(1) if m else "upnp:rootdevice"
    # a v1 device: it does not answer searches for IGD:2
    if st not in ("urn:schemas-upnp-org:device:InternetGatewayDevice:1", "upnp:rootdevice", "ssdp:all"):
        continue
    reply = ("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: %s\r\nUSN: uuid:00000000-0000-0000-0000-000000000001::%s\r\n"
             "EXT:\r\nSERVER: quirky/1.0 UPnP/1.0\r\nLOCATION: http://%s:%d/desc.xml\r\n\r\n" % (st, st, ADDR, port))
    ssdp.sendto(reply.encode(), peer)
