"""Registry deliveries as vendors document them, and how each source signs them.

One fixture per documented example (the vendor's page is named above each); `FIXTURES` are
pushes with what they must parse to, `IGNORED` deliveries that are no pushes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from tests.service.conftest import Kollie

SECRET = "webhook-secret-0123456789"
IMAGE = "registry.example.com/acme/web"
TAG = "feature-new-thing-abc1234-1900000000"
DIGEST = "sha256:" + "ab" * 32


def sign(source: str, body: bytes) -> dict[str, str]:
    if source == "generic":
        return {
            "X-Signature": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        }
    if source == "ghcr":
        return {
            "X-Hub-Signature-256": "sha256="
            + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
            "X-GitHub-Event": "package",
        }
    if source == "nexus":
        return {
            "X-Nexus-Webhook-Signature": hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
        }
    if source == "harbor":
        return {"Authorization": SECRET}
    if source == "artifactory":
        return {"X-JFrog-Event-Auth": SECRET}
    return {"Authorization": f"Bearer {SECRET}"}


def _gar_envelope(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "message": {"data": base64.b64encode(json.dumps(data).encode()).decode(), "messageId": "1"},
        "subscription": "projects/p/subscriptions/s",
    }


def _pubsub_push(message: str) -> dict[str, Any]:
    """Pub/Sub's documented push request body ("Receive messages from push subscriptions"),
    carrying `message`."""
    return {
        "message": {
            "attributes": {"key": "value"},
            "data": base64.b64encode(message.encode()).decode(),
            "messageId": "2070443601311540",
            "message_id": "2070443601311540",
            "publishTime": "2021-02-26T19:13:55.749Z",
            "publish_time": "2021-02-26T19:13:55.749Z",
        },
        "subscription": "projects/myproject/subscriptions/mysubscription",
    }


# Artifact Registry's "Notification examples" (Configure Pub/Sub notifications), as the JSON
# strings it publishes;
# the documentation shortens the digest, so it is not read as one.
_GAR_IMAGE_PUSHED = (
    '{"action":"INSERT",'
    '"digest":"us-west1-docker.pkg.dev/my-project/my-repo/hello-world@sha256:6ec128e26cd5..."}'
)
_GAR_TAG_PUSHED = (
    '{"action":"INSERT",'
    '"digest":"us-west1-docker.pkg.dev/my-project/my-repo/hello-world@sha256:6ec128e26cd5...",'
    '"tag":"us-west1-docker.pkg.dev/my-project/my-repo/hello-world:1.1"}'
)
_GAR_TAG_DELETED = (
    '{"action":"DELETE","tag":"us-west1-docker.pkg.dev/my-project/my-repo/hello-world:1.1"}'
)

# CDEvents spec examples/artifact_published.json (spec v0.2 era), verbatim: its subject is a Go
# module purl.
_CDEVENT_ARTIFACT_PUBLISHED: dict[str, Any] = {
    "context": {
        "version": "0.2.0",
        "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
        "source": "/event/source/123",
        "type": "dev.cdevents.artifact.published.0.1.1",
        "timestamp": "2023-03-20T14:27:05.315384Z",
    },
    "subject": {
        "id": "pkg:golang/mygit.com/myorg/myapp@234fd47e07d1004f0aed9c",
        "source": "/event/source/123",
        "type": "artifact",
        "content": {},
    },
}


def _cdevent_for(purl: str) -> dict[str, Any]:
    """The spec's example with an OCI purl as its subject (the purl-spec's own `oci` examples
    below)."""
    return {
        **_CDEVENT_ARTIFACT_PUBLISHED,
        "subject": {**_CDEVENT_ARTIFACT_PUBLISHED["subject"], "id": purl},
    }


_ECR_EVENT = {
    "version": "0",
    "detail-type": "ECR Image Action",
    "source": "aws.ecr",
    "account": "123456789012",
    "region": "eu-west-1",
    "detail": {
        "result": "SUCCESS",
        "repository-name": "acme/web",
        "image-digest": DIGEST,
        "action-type": "PUSH",
        "image-tag": "v1",
    },
}

# Harbor's "CloudEvents" payload format: the documented example (Configure Webhook
# Notifications, goharbor.io docs), an artifact pushed by digest (its "tag" is the digest).
HARBOR_CLOUDEVENT: dict[str, Any] = {
    "specversion": "1.0",
    "id": "66e18103-09c1-41f6-982f-37df223f3eeb",
    "requestid": "51c0b694-0168-4f3c-b0db-282565455d7b",
    "source": "/projects/2/webhook/policies/15",
    "type": "harbor.artifact.pushed",
    "datacontenttype": "application/json",
    "time": "2023-04-03T06:04:46Z",
    "data": {
        "resources": [
            {
                "digest": "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
                "tag": "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
                "resource_url": "localhost/harbor/alpine@sha256:"
                "954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
            }
        ],
        "repository": {
            "date_created": 1680501893,
            "name": "alpine",
            "namespace": "harbor",
            "repo_full_name": "harbor/alpine",
            "repo_type": "private",
        },
    },
    "operator": "harbor-jobservice",
}


def harbor_cloudevent_tagged(tag: str, time: str = "2023-04-03T06:04:46Z") -> dict[str, Any]:
    """The documented CloudEvent with the artifact pushed under a tag."""
    resource = {
        **HARBOR_CLOUDEVENT["data"]["resources"][0],
        "tag": tag,
        "resource_url": f"localhost/harbor/alpine:{tag}",
    }
    return {
        **HARBOR_CLOUDEVENT,
        "time": time,
        "data": {**HARBOR_CLOUDEVENT["data"], "resources": [resource]},
    }


# Azure Container Registry as an Event Grid source (learn.microsoft.com, event-schema-container-
# registry): the ImagePushed example in the CloudEvents schema and in the Event Grid schema.
_ACR_GRID_DATA: dict[str, Any] = {
    "id": "31c51664-e5bd-416a-a5df-e5206bc47ed0",
    "timestamp": "2018-04-25T21:39:47.276585742Z",
    "action": "push",
    "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "size": 3023,
        "digest": "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5",
        "length": 3023,
        "repository": "aci-helloworld",
        "tag": "v1",
    },
    "request": {
        "id": "7c66f28b-de19-40a4-821c-6f5f6c0003a4",
        "host": "demo.azurecr.io",
        "method": "PUT",
        "useragent": "docker/18.03.0-ce go/go1.9.4 git-commit/0520e24 os/windows arch/amd64 "
        "UpstreamClient(Docker-Client/18.03.0-ce \\(windows\\))",
    },
}
ACR_GRID_CLOUDEVENTS: list[dict[str, Any]] = [
    {
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "source": "/subscriptions/<subscription-id>/resourceGroups/<resource-group-name>"
        "/providers/Microsoft.ContainerRegistry/registries/<name>",
        "subject": "aci-helloworld:v1",
        "type": "Microsoft.ContainerRegistry.ImagePushed",
        "time": "2018-04-25T21:39:47.6549614Z",
        "data": _ACR_GRID_DATA,
        "specversion": "1.0",
    }
]
ACR_GRID_EVENTGRID: list[dict[str, Any]] = [
    {
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "topic": "/subscriptions/<subscription-id>/resourceGroups/<resource-group-name>"
        "/providers/Microsoft.ContainerRegistry/registries/<name>",
        "subject": "aci-helloworld:v1",
        "eventType": "Microsoft.ContainerRegistry.ImagePushed",
        "eventTime": "2018-04-25T21:39:47.6549614Z",
        "data": _ACR_GRID_DATA,
        "dataVersion": "1.0",
        "metadataVersion": "1",
    }
]
# Event Grid's subscription validation event (Event Grid schema), as its webhook docs show it.
GRID_VALIDATION: list[dict[str, Any]] = [
    {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/xx/resourceGroups/xx/providers/Microsoft.ContainerRegistry"
        "/registries/xx",
        "subject": "",
        "data": {
            "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
            "validationUrl": "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/"
            "myeventsub/validate?id=0000000000-0000-0000-0000-00000000000000",
        },
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2022-10-28T04:23:35.1981776Z",
        "metadataVersion": "1",
        "dataVersion": "1",
    }
]
_ACR_DIGEST = "sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"

# One documented example per source: (source, body, expected pushes as (registry, repository,
# tag, digest)).
FIXTURES: list[tuple[str, Any, list[tuple[str | None, str, str, str | None]]]] = [
    (
        "generic",
        {"repository": IMAGE, "tag": "v1", "digest": DIGEST},
        [("registry.example.com", "acme/web", "v1", DIGEST)],
    ),
    # Docker Hub: docs.docker.com/docker-hub/webhooks (push_data + repository)
    (
        "dockerhub",
        {
            "push_data": {"pushed_at": 1, "pusher": "x", "tag": "v1"},
            "repository": {"repo_name": "acme/web", "namespace": "acme", "name": "web"},
        },
        [("docker.io", "acme/web", "v1", None)],
    ),
    # Harbor: PUSH_ARTIFACT with event_data.resources
    (
        "harbor",
        {
            "type": "PUSH_ARTIFACT",
            "occur_at": 1,
            "operator": "admin",
            "event_data": {
                "resources": [
                    {
                        "digest": DIGEST,
                        "tag": "v1",
                        "resource_url": "harbor.example.com/acme/web:v1",
                    }
                ],
                "repository": {"name": "web", "namespace": "acme", "repo_full_name": "acme/web"},
            },
        },
        [("harbor.example.com", "acme/web", "v1", DIGEST)],
    ),
    # A Harbor delivery as captured from a real Harbor (default payload format)
    (
        "harbor",
        {
            "type": "PUSH_ARTIFACT",
            "occur_at": 1737446601,
            "operator": "admin",
            "event_data": {
                "resources": [
                    {
                        "digest": "sha256:"
                        "76525f02955aec223342400a080c73024c995c9db1ba2eabf7505cf3bdf3f1f0",
                        "tag": "v1",
                        "resource_url": "hb.nicolas.my.id/library/rumput:v1",
                    }
                ],
                "repository": {
                    "date_created": 1737446600,
                    "name": "rumput",
                    "namespace": "library",
                    "repo_full_name": "library/rumput",
                    "repo_type": "public",
                },
            },
        },
        [
            (
                "hb.nicolas.my.id",
                "library/rumput",
                "v1",
                "sha256:76525f02955aec223342400a080c73024c995c9db1ba2eabf7505cf3bdf3f1f0",
            )
        ],
    ),
    # GitHub: the `package` event with container_metadata
    (
        "ghcr",
        {
            "action": "published",
            "package": {
                "name": "web",
                "package_type": "CONTAINER",
                "owner": {"login": "Acme"},
                "package_version": {
                    "version": DIGEST,
                    "container_metadata": {"tag": {"name": "v1", "digest": DIGEST}},
                },
            },
        },
        [("ghcr.io", "acme/web", "v1", DIGEST)],
    ),
    # Quay: repository push notification with updated_tags
    (
        "quay",
        {
            "repository": "acme/web",
            "namespace": "acme",
            "name": "web",
            "docker_url": "quay.io/acme/web",
            "updated_tags": ["v1", "latest"],
        },
        [("quay.io", "acme/web", "v1", None), ("quay.io", "acme/web", "latest", None)],
    ),
    # Red Hat Quay docs, "Repository Push" event example
    (
        "quay",
        {
            "name": "repository",
            "repository": "dgangaia/test",
            "namespace": "dgangaia",
            "docker_url": "quay.io/dgangaia/test",
            "homepage": "https://quay.io/repository/dgangaia/repository",
            "updated_tags": ["latest"],
        },
        [("quay.io", "dgangaia/test", "latest", None)],
    ),
    # Quay's original example payload: updated_tags as {tag: image id}
    (
        "quay",
        {
            "pushed_image_count": 2,
            "name": "ubuntu",
            "repository": "devtable/ubuntu",
            "docker_url": "quay.io/devtable/ubuntu",
            "updated_tags": {"latest": "b750fe79269d2ec9"},
            "namespace": "devtable",
            "visibility": "private",
        },
        [("quay.io", "devtable/ubuntu", "latest", None)],
    ),
    # Azure Container Registry webhook reference, "image push event" example
    (
        "acr",
        {
            "id": "cb8c3971-9adc-488b-xxxx-43cbb4974ff5",
            "timestamp": "2017-11-17T16:52:01.343145347Z",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "size": 524,
                "digest": DIGEST,
                "length": 524,
                "repository": "hello-world",
                "tag": "v1",
            },
            "request": {
                "id": "3cbb6949-7549-4fa1-xxxx-a6d5451dffc7",
                "host": "myregistry.azurecr.io",
                "method": "PUT",
                "useragent": "docker/17.09.0-ce go/go1.8.3",
            },
        },
        [("myregistry.azurecr.io", "hello-world", "v1", DIGEST)],
    ),
    # A GitHub `package` event from the older Docker package registry (package_type "docker")
    (
        "ghcr",
        {
            "action": "published",
            "package": {
                "id": 245669,
                "name": "image",
                "package_type": "docker",
                "owner": {"login": "andyearnshaw"},
                "package_version": {
                    "version": "v1",
                    "container_metadata": {"tag": {"name": "v1", "digest": DIGEST}},
                },
            },
        },
        [("ghcr.io", "andyearnshaw/image", "v1", DIGEST)],
    ),
    # Azure Container Registry: action push with target
    (
        "acr",
        {
            "id": "1",
            "action": "push",
            "target": {
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": DIGEST,
                "repository": "acme/web",
                "tag": "v1",
            },
            "request": {"host": "acme.azurecr.io"},
        },
        [("acme.azurecr.io", "acme/web", "v1", DIGEST)],
    ),
    # Google Artifact Registry: Pub/Sub push envelope, base64 data
    (
        "gar",
        _gar_envelope(
            {
                "action": "INSERT",
                "digest": f"europe-docker.pkg.dev/p/r/web@{DIGEST}",
                "tag": "europe-docker.pkg.dev/p/r/web:v1",
            }
        ),
        [("europe-docker.pkg.dev", "p/r/web", "v1", DIGEST)],
    ),
    # Amazon ECR: EventBridge event, directly and inside an SNS notification
    (
        "ecr",
        _ECR_EVENT,
        [("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "acme/web", "v1", DIGEST)],
    ),
    # Amazon ECR user guide, "Event for a completed image push"
    (
        "ecr",
        {
            "version": "0",
            "id": "13cde686-328b-6117-af20-0e5566167482",
            "detail-type": "ECR Image Action",
            "source": "aws.ecr",
            "account": "123456789012",
            "time": "2019-11-16T01:54:34Z",
            "region": "us-west-2",
            "resources": [],
            "detail": {
                "result": "SUCCESS",
                "repository-name": "my-repository-name",
                "image-digest": "sha256:"
                "7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
                "action-type": "PUSH",
                "image-tag": "latest",
            },
        },
        [
            (
                "123456789012.dkr.ecr.us-west-2.amazonaws.com",
                "my-repository-name",
                "latest",
                "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
            )
        ],
    ),
    (
        "ecr",
        {"Type": "Notification", "Message": json.dumps(_ECR_EVENT)},
        [("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "acme/web", "v1", DIGEST)],
    ),
    # CNCF Distribution: events envelope, pulls and blob pushes mixed in
    (
        "distribution",
        {
            "events": [
                {
                    "action": "push",
                    "target": {
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "digest": DIGEST,
                        "repository": "acme/web",
                        "tag": "v1",
                    },
                    "request": {"host": "reg.example.com"},
                },
                {"action": "pull", "target": {"repository": "acme/web", "tag": "v1"}},
                {
                    "action": "push",
                    "target": {
                        "mediaType": "application/octet-stream",
                        "digest": DIGEST,
                        "repository": "acme/web",
                    },
                },
            ]
        },
        [("reg.example.com", "acme/web", "v1", DIGEST)],
    ),
    # Distribution's notification envelope with every field of its Event type (id, timestamp,
    # target with
    # size/length/url, request with addr/host/method/useragent, actor, source); it is sent with
    # Content-Type application/vnd.docker.distribution.events.v1+json, which the endpoint accepts.
    (
        "distribution",
        {
            "events": [
                {
                    "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
                    "timestamp": "2016-03-09T14:44:26.402973972-08:00",
                    "action": "push",
                    "target": {
                        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                        "size": 708,
                        "digest": DIGEST,
                        "length": 708,
                        "repository": "hello-world",
                        "url": f"http://registry.example.com:5000/v2/hello-world/manifests/{DIGEST}",
                        "tag": "latest",
                    },
                    "request": {
                        "id": "6df24a34-0959-4923-81ca-14f09767db19",
                        "addr": "203.0.113.11:42961",
                        "host": "registry.example.com:5000",
                        "method": "PUT",
                        "useragent": "curl/7.38.0",
                    },
                    "actor": {},
                    "source": {
                        "addr": "xtal.local:5000",
                        "instanceID": "a53db899-3b4b-4a62-a067-8dd013beaca4",
                    },
                }
            ]
        },
        [("registry.example.com:5000", "hello-world", "latest", DIGEST)],
    ),
    # JFrog Artifactory: docker domain, event_type pushed
    (
        "artifactory",
        {
            "domain": "docker",
            "event_type": "pushed",
            "data": {
                "repo_key": "docker-local",
                "path": "web/v1/manifest.json",
                "name": "manifest.json",
                "sha256": "ab" * 32,
                "image_name": "acme/web",
                "tag": "v1",
            },
        },
        [(None, "acme/web", "v1", DIGEST)],
    ),
    # JFrog's documentation example ("Docker Tag was Pushed"): the data object on its own
    (
        "artifactory",
        {
            "repo_key": "docker-remote-cache",
            "event_type": "pushed",
            "path": "library/ubuntu/latest/list.manifest.json",
            "name": "list.manifest.json",
            "sha256": "35c4a2c15539c6c1e4e5fa4e554dac323ad0107d8eb5c582d6ff386b383b7dce",
            "size": 1206,
            "image_name": "library/ubuntu",
            "tag": "latest",
            "platforms": [{"architecture": "amd64", "os": "linux"}],
        },
        [
            (
                None,
                "library/ubuntu",
                "latest",
                "sha256:35c4a2c15539c6c1e4e5fa4e554dac323ad0107d8eb5c582d6ff386b383b7dce",
            )
        ],
    ),
    # Sonatype Nexus: component CREATED, docker format
    (
        "nexus",
        {
            "timestamp": "2026-01-01T00:00:00.000+0000",
            "repositoryName": "docker-hosted",
            "action": "CREATED",
            "component": {"format": "docker", "name": "acme/web", "version": "v1"},
        },
        [(None, "acme/web", "v1", None)],
    ),
    # Artifact Registry's documented tag push, in Pub/Sub's documented push envelope and
    # delivered unwrapped
    (
        "gar",
        _pubsub_push(_GAR_TAG_PUSHED),
        [("us-west1-docker.pkg.dev", "my-project/my-repo/hello-world", "1.1", None)],
    ),
    (
        "gar",
        json.loads(_GAR_TAG_PUSHED),
        [("us-west1-docker.pkg.dev", "my-project/my-repo/hello-world", "1.1", None)],
    ),
    # The purl-spec's `oci` examples (PURL-TYPES) as CDEvents artifact.published subjects
    (
        "cdevents",
        _cdevent_for(
            "pkg:oci/debian@sha256%3A244fd47e07d10?repository_url=docker.io/library/debian"
            "&arch=amd64&tag=latest"
        ),
        [("docker.io", "library/debian", "latest", "sha256:244fd47e07d10")],
    ),
    (
        "cdevents",
        _cdevent_for(
            "pkg:oci/debian@sha256%3A244fd47e07d10?repository_url=ghcr.io/debian&tag=bullseye"
        ),
        [("ghcr.io", "debian", "bullseye", "sha256:244fd47e07d10")],
    ),
    (
        "cdevents",
        _cdevent_for(
            "pkg:oci/static@sha256%3A244fd47e07d10?repository_url=gcr.io/distroless/static"
            "&tag=latest"
        ),
        [("gcr.io", "distroless/static", "latest", "sha256:244fd47e07d10")],
    ),
    (
        "cdevents",
        _cdevent_for("pkg:oci/hello-wasm@sha256%3A244fd47e07d10?tag=v1"),
        [(None, "hello-wasm", "v1", "sha256:244fd47e07d10")],
    ),
    # A repository_url naming only the registry (as some producers write it)
    (
        "cdevents",
        _cdevent_for("pkg:oci/debian@sha256%3A244fd47e07d10?repository_url=ghcr.io&tag=bullseye"),
        [("ghcr.io", "debian", "bullseye", "sha256:244fd47e07d10")],
    ),
    # A structured-mode CloudEvent carrying the CDEvent as its data (a JSON string, as the Java
    # SDK sends it)
    (
        "cdevents",
        {
            "specversion": "1.0",
            "type": "dev.cdevents.artifact.published.0.1.1",
            "source": "/event/source/123",
            "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
            "datacontenttype": "application/json",
            "data": json.dumps(
                _cdevent_for(
                    "pkg:oci/debian@sha256%3A244fd47e07d10"
                    "?repository_url=ghcr.io/debian&tag=bullseye"
                )
            ),
        },
        [("ghcr.io", "debian", "bullseye", "sha256:244fd47e07d10")],
    ),
    # CDEvents artifact.published with an OCI purl
    (
        "cdevents",
        {
            "context": {"type": "dev.cdevents.artifact.published.0.1.1", "id": "1", "source": "ci"},
            "subject": {
                "id": f"pkg:oci/web@{DIGEST.replace(':', '%3A')}"
                "?repository_url=reg.example.com/acme/web&tag=v1"
            },
        },
        [("reg.example.com", "acme/web", "v1", DIGEST)],
    ),
    # Harbor's CloudEvents format, tagged
    (
        "harbor",
        harbor_cloudevent_tagged("v1"),
        [("localhost", "harbor/alpine", "v1", HARBOR_CLOUDEVENT["data"]["resources"][0]["digest"])],
    ),
    # ACR's image push through Event Grid, in both schemas
    (
        "acr",
        ACR_GRID_CLOUDEVENTS,
        [("demo.azurecr.io", "aci-helloworld", "v1", _ACR_DIGEST)],
    ),
    (
        "acr",
        ACR_GRID_EVENTGRID,
        [("demo.azurecr.io", "aci-helloworld", "v1", _ACR_DIGEST)],
    ),
    # One CloudEvent delivered on its own (structured mode), not in a list
    (
        "acr",
        ACR_GRID_CLOUDEVENTS[0],
        [("demo.azurecr.io", "aci-helloworld", "v1", _ACR_DIGEST)],
    ),
]

IGNORED: list[tuple[str, Any]] = [
    # Nexus Repository's documented repository *asset* event (rm:repository:asset): not a
    # component push
    (
        "nexus",
        {
            "timestamp": "2016-11-10T23:57:49.664+0000",
            "nodeId": "52905B51-085CCABB-CEBBEAAD-16795588-FC927D93",
            "initiator": "admin/127.0.0.1",
            "repositoryName": "npm-proxy",
            "action": "CREATED",
            "asset": {
                "id": "31c950c8eeeab78336308177ae9c441c",
                "assetId": "bnBtLXByb3h5OjMxYzk1MGM4ZWVlYWI3ODMzNjMwODE3N2FlOWM0NDFj",
                "format": "npm",
                "name": "concrete",
            },
        },
    ),
    ("harbor", {"type": "DELETE_ARTIFACT", "event_data": {}}),
    # Harbor's documented CloudEvent: pushed by digest, no tag to follow
    ("harbor", HARBOR_CLOUDEVENT),
    ("harbor", {**HARBOR_CLOUDEVENT, "type": "harbor.artifact.deleted"}),
    # Event Grid: its subscription handshake, and other events of the registry
    ("acr", GRID_VALIDATION),
    (
        "acr",
        [{**ACR_GRID_EVENTGRID[0], "eventType": "Microsoft.ContainerRegistry.ChartPushed"}],
    ),
    ("acr", [{**ACR_GRID_CLOUDEVENTS[0], "type": "Microsoft.ContainerRegistry.ImageDeleted"}]),
    ("harbor", {"type": "PULL_ARTIFACT", "event_data": {}}),
    ("acr", {"action": "chart_push", "target": {"repository": "charts/web", "tag": "1.0.0"}}),
    ("acr", {"action": "delete", "target": {"repository": "acme/web", "tag": "v1"}}),
    ("gar", _gar_envelope({"action": "DELETE", "tag": "europe-docker.pkg.dev/p/r/web:v1"})),
    ("ecr", {"Type": "SubscriptionConfirmation", "SubscribeURL": "https://sns.example/confirm"}),
    ("ecr", {**_ECR_EVENT, "detail": {**_ECR_EVENT["detail"], "result": "FAILURE"}}),
    (
        "distribution",
        {"events": [{"action": "pull", "target": {"repository": "acme/web", "tag": "v1"}}]},
    ),
    ("generic", {"repository": IMAGE, "tag": "sha256-abc.sig"}),
    (
        "nexus",
        {
            "action": "DELETED",
            "component": {"format": "docker", "name": "acme/web", "version": "v1"},
        },
    ),
    ("artifactory", {"domain": "docker", "event_type": "deleted", "data": {}}),
    ("cdevents", {"context": {"type": "dev.cdevents.build.finished.0.1.1"}, "subject": {}}),
    # The CDEvents spec's own artifact.published example: a Go module, not an image
    ("cdevents", _CDEVENT_ARTIFACT_PUBLISHED),
    # The CDEvents spec's OCI artifact id (service.deployed's artifactId example): a digest, no
    # tag to follow
    (
        "cdevents",
        _cdevent_for(
            "pkg:oci/myapp@sha256%3A0b31b1c02ff458ad9b7b81cbdf8f028bd54699fa151f221d1e8de6817db93427"
        ),
    ),
    # Artifact Registry: an untagged image upload and a tag deletion, in the documented envelope
    ("gar", _pubsub_push(_GAR_IMAGE_PUSHED)),
    ("gar", _pubsub_push(_GAR_TAG_DELETED)),
    ("gar", json.loads(_GAR_TAG_DELETED)),
]


async def deliver(
    kollie: Kollie, source: str, body: bytes, headers: dict[str, str]
) -> tuple[int, Any]:
    async with kollie.http.post(
        kollie.url(f"/webhooks/registry/{source}"),
        data=body,
        headers={"Content-Type": "application/json", **headers},
    ) as r:
        return r.status, await r.json()


def signed(source: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    return raw, sign(source, raw)
