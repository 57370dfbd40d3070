"""The request sequence for bench/callgrind/run.sh: N creates, then by mode N
reads (g), N first pages (l) and N deletes (d), over one keep-alive connection."""
import base64, hashlib, hmac, http.client, json, sys, time, uuid
port, n = int(sys.argv[1]), int(sys.argv[2]); mode = sys.argv[3] if len(sys.argv) > 3 else "cgld"
secret = b"callgrind-secret-that-is-long-enough-0123456789"
b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=")
def token(sub):
    h = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()); p = b64(json.dumps({"sub": sub, "exp": int(time.time()) + 3600}).encode())
    return (h + b"." + p + b"." + b64(hmac.new(secret, h + b"." + p, hashlib.sha256).digest())).decode()
t = token(str(uuid.UUID(int=42)))
c = http.client.HTTPConnection("127.0.0.1", port)
def call(m, path, body=None):
    hdr = {"Authorization": "Bearer " + t}
    if body is not None: hdr["Content-Type"] = "application/json"
    c.request(m, path, body=json.dumps(body) if body is not None else None, headers=hdr)
    r = c.getresponse(); data = r.read(); return r.status, data
ids = []
for i in range(n):
    s, d = call("POST", "/chat/", {"title": "t%d" % i}); assert s == 201, (s, d); ids.append(json.loads(d)["id"])
for i in (ids if "g" in mode else []):
    s, _ = call("GET", "/chat/" + i); assert s == 200
for i in range(n if "l" in mode else 0):
    s, _ = call("GET", "/chat/?limit=20"); assert s == 200
for i in (ids if "d" in mode else []):
    s, _ = call("DELETE", "/chat/" + i); assert s == 204
print("done", n)
