"""Local fakes of the Alibaba Cloud and Tencent Cloud SMS APIs, for tests of the provider
backends (core/sms_providers.py) and of whatever sends through them.

Each fake listens on 127.0.0.1 and checks what the real API checks and what matters to us: the
action and version, the request's signature (recomputed with the test's secret, so a broken
signing fails), the signature name, the template and its parameters, the numbers' format. It
answers in the provider's own shape, success or refusal, and records what it accepted, with the
text a member would read (the fake's template, filled). ``only_loopback`` makes every address
lookup but the loopback's fail, so a test that would reach a real gateway cannot.
"""

import hashlib
import hmac
import json
import socket
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

ALIYUN = "core.sms_providers.AliyunSmsBackend"
TENCENT = "core.sms_providers.TencentSmsBackend"
KEY_ID, KEY_SECRET = "LTAI-test-key", "aliyun-test-secret-0123456789"
SECRET_ID, SECRET_KEY = "AKID-test-id", "tencent-test-secret-0123456789"
APP_ID = "1400000001"
SIGN = "轮训学习"

# The templates each fake provider has approved. Alibaba names its variables, Tencent numbers
# them; the texts are what a member would read.
ALIYUN_TEMPLATES = {
    "SMS_100": "您的验证码为${code}，${minutes}分钟内有效。",
    "SMS_200": "${name}同志，您的培训账号密码已于${when}重置。",
    "SMS_300": "${name}同志，请于${deadline}前完成《${round}》的学习。",
}
TENCENT_TEMPLATES = {
    "1001": "您的验证码为{1}，{2}分钟内有效。",
    "1002": "{1}同志，您的培训账号密码已于{2}重置。",
    "1003": "{1}同志，请于{2}前完成《{3}》的学习。",
}


# --- The fakes --------------------------------------------------------------------------------


class FakeGateway:
    """A provider's HTTP API on 127.0.0.1: ``accepted`` lists what it took (one dict per
    number, with the text the member reads), ``requests`` every request it answered."""

    def __init__(self):
        self.requests = []
        self.accepted = []
        self.limited = set()  # numbers over their daily limit
        self.hang = threading.Event()  # set: answer nothing until the test ends
        self.done = threading.Event()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if gateway.hang.is_set():
                    gateway.done.wait(30)
                    return
                status, answer = gateway.answer(self.command, self.path, self.headers, body)
                gateway.requests.append({"path": self.path, "status": status, "answer": answer})
                data = json.dumps(answer, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", gateway.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.done.set()
        self.server.shutdown()
        self.server.server_close()

    def texts(self):
        return [item["text"] for item in self.accepted]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeAliyun(FakeGateway):
    """dysmsapi 2017-05-25, RPC style signed with ACS3-HMAC-SHA256 (headers)."""

    content_type = "application/json;charset=utf-8"

    def answer(self, method, path, headers, body):
        request_id = str(uuid.uuid4()).upper()
        error = self.signature_error(method, path, headers, body)
        if error:
            return 400, {"Code": error[0], "Message": error[1], "RequestId": request_id}
        if headers.get("x-acs-version") != "2017-05-25":
            return 400, {"Code": "InvalidVersion", "Message": "bad version", "RequestId": ""}
        params = dict(parse_qsl(urlsplit(path).query, keep_blank_values=True))
        params.update(parse_qsl(body.decode(), keep_blank_values=True))
        action = headers.get("x-acs-action")
        if action == "SendSms":
            phones = params.get("PhoneNumbers", "").split(",")
            signs = [params.get("SignName")] * len(phones)
            values = [json.loads(params.get("TemplateParam") or "{}")] * len(phones)
        elif action == "SendBatchSms":
            phones = json.loads(params["PhoneNumberJson"])
            signs = json.loads(params["SignNameJson"])
            values = json.loads(params["TemplateParamJson"])
            if not len(phones) == len(signs) == len(values) or len(phones) > 100:
                return 200, {"Code": "isv.BATCH_LIMIT_CONTROL", "Message": "批量数量不符"}
        else:
            return 404, {"Code": "InvalidAction.NotFound", "Message": action, "RequestId": ""}
        template = ALIYUN_TEMPLATES.get(params.get("TemplateCode"))
        if template is None:
            return 200, {"Code": "isv.SMS_TEMPLATE_ILLEGAL", "Message": "模板不合法"}
        if any(sign != SIGN for sign in signs):
            return 200, {"Code": "isv.SMS_SIGNATURE_ILLEGAL", "Message": "签名不合法"}
        if len(phones) > 1000 or any(
            not (phone.isdigit() and len(phone) == 11 and phone.startswith("1")) for phone in phones
        ):
            return 200, {"Code": "isv.MOBILE_NUMBER_ILLEGAL", "Message": "非法手机号"}
        texts = []
        for value in values:
            text = template
            for name, filled in value.items():
                if not isinstance(filled, str):
                    return 200, {"Code": "isv.INVALID_JSON_PARAM", "Message": "参数须为字符串"}
                text = text.replace("${" + name + "}", filled)
            if "${" in text:
                return 200, {"Code": "isv.TEMPLATE_MISSING_PARAMETERS", "Message": "模板缺少变量"}
            texts.append(text)
        if self.limited & set(phones):
            return 200, {
                "Code": "isv.BUSINESS_LIMIT_CONTROL",
                "Message": "触发天级流控Permits:10",
                "RequestId": request_id,
            }
        for phone, text in zip(phones, texts, strict=True):
            self.accepted.append({"action": action, "phone": phone, "text": text})
        answer = {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0"}
        return 200, {**answer, "RequestId": request_id}

    def signature_error(self, method, path, headers, body):
        authorization = headers.get("Authorization", "")
        algorithm, _space, fields = authorization.partition(" ")
        if algorithm != "ACS3-HMAC-SHA256":
            return "MissingAuthorization", "no ACS3-HMAC-SHA256 Authorization header"
        parts = dict(field.split("=", 1) for field in fields.split(","))
        if parts.get("Credential") != KEY_ID:
            return "InvalidAccessKeyId.NotFound", "Specified access key is not found."
        if headers.get("x-acs-content-sha256") != sha256_hex(body):
            return "IncompleteSignature", "the payload hash does not match the body"
        signed = parts["SignedHeaders"].split(";")
        if not {"host", "x-acs-action", "x-acs-date", "x-acs-version"} <= set(signed):
            return "IncompleteSignature", "required headers are not signed"
        url = urlsplit(path)
        query = sorted(parse_qsl(url.query, keep_blank_values=True))
        canonical = "\n".join(
            [
                method,
                url.path or "/",
                "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in query),
                "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed),
                ";".join(signed),
                headers["x-acs-content-sha256"],
            ]
        )
        to_sign = f"ACS3-HMAC-SHA256\n{sha256_hex(canonical.encode())}"
        expected = hmac.new(KEY_SECRET.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, parts.get("Signature", "")):
            return "SignatureDoesNotMatch", "Specified signature does not match our calculation."
        return None


class FakeTencent(FakeGateway):
    """sms 2021-01-11, signed with TC3-HMAC-SHA256; one status per number."""

    content_type = "application/json"

    def answer(self, method, path, headers, body):
        request_id = str(uuid.uuid4())

        def error(code, message):
            failure = {"Code": code, "Message": message}
            return 200, {"Response": {"Error": failure, "RequestId": request_id}}

        problem = self.signature_error(method, path, headers, body)
        if problem:
            return error(*problem)
        if headers.get("X-TC-Action") != "SendSms" or headers.get("X-TC-Version") != "2021-01-11":
            return error("InvalidAction", "the action or version is not SendSms 2021-01-11")
        params = json.loads(body)
        if params.get("SmsSdkAppId") != APP_ID:
            return error("FailedOperation.SmsSdkAppIdVerifyFail", "SdkAppId verification failed")
        if params.get("SignName") != SIGN:
            return error("FailedOperation.SignatureIncorrectOrUnapproved", "unapproved signature")
        template = TENCENT_TEMPLATES.get(params.get("TemplateId"))
        if template is None:
            return error("FailedOperation.TemplateIncorrectOrUnapproved", "unapproved template")
        values = params.get("TemplateParamSet") or []
        if any(f"{{{n}}}" not in template for n in range(1, len(values) + 1)) or (
            f"{{{len(values) + 1}}}" in template
        ):
            return error(
                "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                "the parameters do not match the approved template",
            )
        phones = params.get("PhoneNumberSet") or []
        if len(phones) > 200:
            return error("LimitExceeded.PhoneNumberCountLimit", "more than 200 numbers")
        text = template
        for n, value in enumerate(values, start=1):
            text = text.replace(f"{{{n}}}", value)
        statuses = []
        for phone in phones:
            status = {"SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext": ""}
            status["IsoCode"] = "CN"
            if not (phone.startswith("+861") and phone[1:].isdigit() and len(phone) == 14):
                status.update(Code="InvalidParameterValue.IncorrectPhoneNumber", Message="bad")
            elif phone in self.limited:
                status.update(
                    Code="LimitExceeded.PhoneNumberDailyLimit",
                    Message="the number of sms messages sent from a single mobile number "
                    "every day exceeds the upper limit",
                )
            else:
                status.update(Code="Ok", Message="send success", Fee=1, SerialNo=request_id)
                self.accepted.append({"phone": phone, "text": text})
            statuses.append(status)
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": request_id}}

    def signature_error(self, method, path, headers, body):
        authorization = headers.get("Authorization", "")
        algorithm, _space, fields = authorization.partition(" ")
        if algorithm != "TC3-HMAC-SHA256":
            return "AuthFailure.SignatureFailure", "no TC3-HMAC-SHA256 Authorization header"
        parts = dict(field.strip().split("=", 1) for field in fields.split(","))
        secret_id, date, service, _terminator = parts["Credential"].split("/")
        if secret_id != SECRET_ID:
            return "AuthFailure.SecretIdNotFound", "the SecretId is not found"
        timestamp = int(headers["X-TC-Timestamp"])
        if datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d") != date:
            return "AuthFailure.SignatureFailure", "the credential date is not the timestamp's"
        signed = parts["SignedHeaders"].split(";")
        canonical = "\n".join(
            [
                method,
                urlsplit(path).path or "/",
                urlsplit(path).query,
                "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed),
                ";".join(signed),
                sha256_hex(body),
            ]
        )
        scope = f"{date}/{service}/tc3_request"
        to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{sha256_hex(canonical.encode())}"

        def sign(key, message):
            return hmac.new(key, message.encode(), hashlib.sha256).digest()

        key = sign(sign(sign(("TC3" + SECRET_KEY).encode(), date), service), "tc3_request")
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        if service != "sms" or not hmac.compare_digest(expected, parts.get("Signature", "")):
            return "AuthFailure.SignatureFailure", "the signature does not match"
        return None


def only_loopback(monkeypatch):
    """Every address lookup but the loopback's fails, and is recorded: no test reaches a real
    gateway, and one that tries says which host it tried."""
    tried = []
    lookup = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost"):
            tried.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"no network in tests: {host}")
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    return tried


TEMPLATES = {
    ALIYUN: {
        "verification_code": "SMS_100",
        "password_reset_notice": "SMS_200",
        "reminder": "SMS_300",
    },
    TENCENT: {"verification_code": "1001", "password_reset_notice": "1002", "reminder": "1003"},
}


def configure(settings, backend, url):
    settings.LUNXUN_SMS_BACKEND = backend
    settings.LUNXUN_SMS_TEMPLATES = dict(TEMPLATES[backend])
    # Tencent's reminder template (1003) wants the deadline before the round.
    settings.LUNXUN_SMS_TEMPLATE_PARAMS = (
        {"reminder": ["name", "deadline", "round"]} if backend == TENCENT else {}
    )
    settings.LUNXUN_SMS_CONNECT_TIMEOUT = 2
    settings.LUNXUN_SMS_READ_TIMEOUT = 5
    if backend == ALIYUN:
        settings.LUNXUN_SMS_ALIYUN_ACCESS_KEY_ID = KEY_ID
        settings.LUNXUN_SMS_ALIYUN_ACCESS_KEY_SECRET = KEY_SECRET
        settings.LUNXUN_SMS_ALIYUN_SIGN_NAME = SIGN
        settings.LUNXUN_SMS_ALIYUN_REGION = "cn-hangzhou"
        settings.LUNXUN_SMS_ALIYUN_ENDPOINT = url
    else:
        settings.LUNXUN_SMS_TENCENT_SECRET_ID = SECRET_ID
        settings.LUNXUN_SMS_TENCENT_SECRET_KEY = SECRET_KEY
        settings.LUNXUN_SMS_TENCENT_SDK_APP_ID = APP_ID
        settings.LUNXUN_SMS_TENCENT_SIGN_NAME = SIGN
        settings.LUNXUN_SMS_TENCENT_REGION = "ap-guangzhou"
        settings.LUNXUN_SMS_TENCENT_ENDPOINT = url
