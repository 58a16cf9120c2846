"""The S3-compatible store, against moto's in-process fake of S3: a whole upload, its download, the
ciphertext in the bucket, and deletion."""

import boto3
import pytest
from moto import mock_aws

from models import attachment_storage, db
from tests import attachment_samples as samples
from tests.factories import make_child, make_user, token_for
from tests.test_attachments import API, upload


@pytest.fixture
def bucket(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="homecoming-test")
        yield client


@pytest.fixture
def app(app, bucket):
    """The suite's app, storing in the fake bucket."""
    app.config.update(ATTACHMENT_S3_BUCKET="homecoming-test", ATTACHMENT_S3_PREFIX="hc/")
    attachment_storage.configure(app.config)
    return app


def objects(bucket) -> dict:
    listed = bucket.list_objects_v2(Bucket="homecoming-test").get("Contents", [])
    return {o["Key"]: bucket.get_object(Bucket="homecoming-test", Key=o["Key"])["Body"].read() for o in listed}


def test_an_upload_lands_sealed_in_the_bucket_and_comes_back_whole(app, client, bucket):
    assert isinstance(attachment_storage.current(), attachment_storage.S3Storage)
    with app.app_context():
        boss = make_user("manager", username="boss.s3")
        child = make_child(make_user("caseworker", username="cw.s3"))
        db.session.commit()
        headers, child_id = token_for(client, boss), str(child.id)
    data = samples.big_png()
    done = upload(client, headers, child_id, data, chunk=70_000)
    assert done.status_code == 201, done.get_json()
    stored = objects(bucket)
    assert list(stored) == [f"hc/files/{done.get_json()['id']}"]
    blob = stored[f"hc/files/{done.get_json()['id']}"]
    assert all(data[i:i + 32] not in blob for i in range(0, len(data), 10_007))
    assert client.get(f"{API}/attachments/{done.get_json()['id']}/content", headers=headers).data == data
    etag = {"If-Match": f'"{done.get_json()["sha256"]}"'}
    assert client.delete(f"{API}/attachments/{done.get_json()['id']}", headers={**headers, **etag}).status_code == 204
    assert objects(bucket) == {}


def test_a_partial_upload_is_sealed_parts_and_abandoning_it_empties_the_prefix(app, client, bucket):
    with app.app_context():
        cw = make_user("caseworker", username="cw.s3b")
        child = make_child(cw)
        db.session.commit()
        headers, child_id = token_for(client, cw), str(child.id)
    data = samples.big_png()
    created = client.post(f"{API}/children/{child_id}/attachments/uploads", headers=headers, json={
        "content_type": "image/png", "size": len(data), "sha256": samples.sha(data)}).get_json()
    for offset in (0, 50_000):
        client.patch(f"{API}/attachments/uploads/{created['id']}", data=data[offset:offset + 50_000], headers={
            **headers, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"})
    parts = objects(bucket)
    assert sorted(parts) == [f"hc/uploads/{created['id']}/000000", f"hc/uploads/{created['id']}/000001"]
    assert all(data[1000:1032] not in blob and data[60_000:60_032] not in blob for blob in parts.values())
    assert client.delete(f"{API}/attachments/uploads/{created['id']}", headers=headers).status_code == 204
    assert objects(bucket) == {}
