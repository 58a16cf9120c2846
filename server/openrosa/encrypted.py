"""Encrypted submissions (the restricted-profile form): ODK Collect encrypts the filled form on the
phone with a fresh AES-256 key, which it encrypts with the form's RSA public key (``base64RsaPublicKey``).
The server holds the private key, kept like the data key (HOMECOMING_ODK_PRIVATE_KEY or
HOMECOMING_ODK_PRIVATE_KEY_FILE; docs/operations.md), and decrypts on arrival.

The scheme is ODK's (docs.getodk.org, "Encrypted forms"): RSA-OAEP with SHA-256 for the key; each file
AES-256-CFB with PKCS#5 padding, its IV the MD5 of instanceID + key with one byte stepped per file
(media files first, in the manifest's order, then submission.xml); and a signature, the RSA-OAEP
encryption of the MD5 of a list of what was sent, which is checked so a manifest cannot be altered.
"""

import base64
import binascii
import hashlib

# ODK's scheme is AES-CFB, which cryptography files under "decrepit": it is what Collect sends.
from cryptography.hazmat.decrepit.ciphers.modes import CFB
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from server.openrosa.errors import OpenRosaError
from server.openrosa.xml import child, local, text_at

SUBMISSION_XML = "submission.xml"


def load_private_key(pem: str):
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ValueError("HOMECOMING_ODK_PRIVATE_KEY is not an unencrypted PEM RSA private key") from None


def public_key_b64(private_key) -> str:
    """The form's ``public_key`` setting: the DER SubjectPublicKeyInfo, base64, as XLSForm wants it."""
    der = private_key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _oaep(mgf_hash):
    return rsa_padding.OAEP(mgf=rsa_padding.MGF1(algorithm=mgf_hash), algorithm=hashes.SHA256(), label=None)


def rsa_decrypt(private_key, data: bytes) -> bytes:
    # Java's "OAEPWithSHA256AndMGF1Padding" means MGF1 with SHA-1 on Android's default provider and
    # with SHA-256 on BouncyCastle; phones use either.
    for mgf_hash in (hashes.SHA1(), hashes.SHA256()):
        try:
            return private_key.decrypt(data, _oaep(mgf_hash))
        except ValueError:
            continue
    raise OpenRosaError(400, "The form was encrypted with another key than this server's. Get blank forms again.")


def file_ivs(instance_id: str, key: bytes, count: int) -> list[bytes]:
    seed = bytearray(hashlib.md5(instance_id.encode() + key).digest())
    ivs = []
    for n in range(count):
        seed[n % 16] = (seed[n % 16] + 1) % 256
        ivs.append(bytes(seed))
    return ivs


def aes_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), CFB(iv)).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(decryptor.update(data) + decryptor.finalize()) + unpadder.finalize()
    except ValueError:
        raise OpenRosaError(400, "An encrypted file of the form could not be decrypted (damaged in transit?). "
                                 "Send the form again.") from None


def decrypt_submission(manifest, parts: dict, private_key) -> bytes:
    """The submission's plain XML, from its manifest and the uploaded parts ({name: bytes})."""
    try:
        key = base64.b64decode(text_at(manifest, "base64EncryptedKey") or "", validate=True)
        signature = base64.b64decode(text_at(manifest, "base64EncryptedElementSignature") or "", validate=True)
    except binascii.Error:
        raise OpenRosaError(400, "The encrypted form's key or signature is not base64.") from None
    instance_id = text_at(child(manifest, "meta"), "instanceID") or ""
    media_list = child(manifest, "media")
    media = [e.text.strip() for e in (media_list if media_list is not None else []) if local(e.tag) == "file"]
    if media:
        raise OpenRosaError(415, "This server takes no photos or recordings with an encrypted form.")
    xml_name = text_at(manifest, "encryptedXmlFile") or f"{SUBMISSION_XML}.enc"
    if xml_name not in parts:
        raise OpenRosaError(400, f"The encrypted form arrived without its file '{xml_name}'. Send it again.")
    aes_key = rsa_decrypt(private_key, key)
    (iv,) = file_ivs(instance_id, aes_key, 1)
    xml = aes_decrypt(aes_key, iv, parts[xml_name])
    source = "".join(f"{line}\n" for line in (
        manifest.get("id"), *([manifest.get("version")] if manifest.get("version") is not None else []),
        text_at(manifest, "base64EncryptedKey"), instance_id, f"{SUBMISSION_XML}::{hashlib.md5(xml).hexdigest()}"))
    if rsa_decrypt(private_key, signature) != hashlib.md5(source.encode()).digest():
        raise OpenRosaError(400, "The encrypted form's signature does not match what was sent. Send it again.")
    return xml
