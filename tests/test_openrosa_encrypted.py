"""The restricted profile arrives as an encrypted form (issue 11): the phone encrypts it as ODK Collect
does (its scheme written out again here, independently of the server's code), and the server opens it
with its private key, applies it, and keeps no plain copy."""

import base64
import hashlib
import os

import pytest

# ODK's scheme is AES-CFB, which cryptography files under "decrepit": it is what Collect sends.
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from sqlalchemy import text

from models import Child, db
from server import create_app
from tests.conftest import empty_tables, make_config
from tests.factories import make_child, make_user
from tests.odk_phone import odk_phone

ENCRYPTED_NS = "http://www.opendatakit.org/xforms/encrypted"


@pytest.fixture(scope="module")
def server_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def app(migrated, server_key):
    app = create_app(make_config(migrated, ODK_PRIVATE_KEY=pem(server_key)))
    yield app
    with app.app_context():
        db.session.remove()
        empty_tables()
        db.engine.dispose()


def oaep(mgf):
    return rsa_padding.OAEP(mgf=rsa_padding.MGF1(mgf), algorithm=hashes.SHA256(), label=None)


def encrypt_like_collect(xml: bytes, form_id: str, version: str, instance_id: str, public_key, mgf=None):
    """(manifest XML, {part name: bytes}) as ODK Collect sends a finalized encrypted form."""
    mgf = mgf or hashes.SHA1()
    key = os.urandom(32)
    seed = bytearray(hashlib.md5(instance_id.encode() + key).digest())
    seed[0] = (seed[0] + 1) % 256  # the first (and here only) file: submission.xml
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), CFB(bytes(seed))).encryptor()
    enc = encryptor.update(padder.update(xml) + padder.finalize()) + encryptor.finalize()
    encrypted_key = base64.b64encode(public_key.encrypt(key, oaep(mgf))).decode()
    source = f"{form_id}\n{version}\n{encrypted_key}\n{instance_id}\nsubmission.xml::{hashlib.md5(xml).hexdigest()}\n"
    signature = base64.b64encode(public_key.encrypt(hashlib.md5(source.encode()).digest(), oaep(mgf))).decode()
    manifest = (f'<data xmlns="{ENCRYPTED_NS}" id="{form_id}" version="{version}" encrypted="yes">'
                f"<base64EncryptedKey>{encrypted_key}</base64EncryptedKey>"
                f'<meta xmlns="http://openrosa.org/xforms"><instanceID>{instance_id}</instanceID></meta>'
                f"<encryptedXmlFile>submission.xml.enc</encryptedXmlFile>"
                f"<base64EncryptedElementSignature>{signature}</base64EncryptedElementSignature></data>")
    return manifest.encode(), {"submission.xml.enc": enc}


def profile(phone, code):
    return phone.fill("homecoming_restricted_profile", {
        "case_code": code, "child/armed_group": "Fictional Brigade", "child/role_in_group": "porter",
        "child/date_joined": "2022-03-01", "child/how_left": "escaped"})


def caseload_child(app):
    with app.app_context():
        child = make_child(make_user("caseworker", username="cw.odk"))
        db.session.commit()
        return child.id, child.case_code


@pytest.mark.parametrize("mgf", [hashes.SHA1(), hashes.SHA256()], ids=["mgf1-sha1", "mgf1-sha256"])
def test_an_encrypted_profile_is_decrypted_applied_and_kept_encrypted(app, client, server_key, mgf):
    child_id, code = caseload_child(app)
    phone = odk_phone(app, client)
    form = phone.get("/odk/forms/homecoming_restricted_profile.xml").get_data(as_text=True)
    public = base64.b64encode(server_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    assert f'base64RsaPublicKey="{public}"' in form
    xml, instance_id = profile(phone, code)
    manifest, parts = encrypt_like_collect(xml, "homecoming_restricted_profile", "2026120301", instance_id,
                                           server_key.public_key(), mgf)
    response = phone.submit(manifest, media=[(name, data, "application/octet-stream") for name, data in parts.items()])
    assert response.status_code == 201, response.get_data(as_text=True)
    with app.app_context():
        child = db.session.get(Child, child_id)
        assert (child.armed_group, child.how_left, child.version) == ("Fictional Brigade", "escaped", 2)
        raw = db.session.execute(text("SELECT xml FROM openrosa_submission")).scalar_one()
        assert "Fictional Brigade" not in raw
    assert "Fictional Brigade" not in phone.get("/odk/forms/homecoming_visit/media/caseload.csv").get_data(as_text=True)


def test_the_profile_sent_in_clear_or_tampered_with_is_refused(app, client, server_key):
    child_id, code = caseload_child(app)
    phone = odk_phone(app, client)
    xml, instance_id = profile(phone, code)
    clear = phone.submit(xml)
    assert clear.status_code == 400 and "must arrive encrypted" in clear.get_data(as_text=True)
    manifest, parts = encrypt_like_collect(xml, "homecoming_restricted_profile", "2026120301", instance_id,
                                           server_key.public_key())
    other_xml = xml.replace(b"Fictional Brigade", b"Another Brigade")
    _, swapped = encrypt_like_collect(other_xml, "homecoming_restricted_profile", "2026120301", instance_id,
                                      server_key.public_key())
    cases = [
        (manifest, {"submission.xml.enc": swapped["submission.xml.enc"]}, "could not be decrypted|signature"),
        (manifest, {}, "without its file"),
        (encrypt_like_collect(xml, "homecoming_restricted_profile", "2026120301", instance_id,
                              rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()),
         None, "another key"),
    ]
    for body, files, words in cases:
        if files is None:
            body, files = body
        response = phone.submit(body, media=[(n, d, "application/octet-stream") for n, d in files.items()])
        assert response.status_code == 400, response.get_data(as_text=True)
        assert any(w in response.get_data(as_text=True) for w in words.split("|"))
    with app.app_context():
        assert db.session.get(Child, child_id).armed_group is None
