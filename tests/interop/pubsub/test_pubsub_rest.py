"""Google's own Pub/Sub Python client against protogate in mock mode.

run.sh starts the gateway over the .proto files the google-cloud-pubsub
wheel ships (stateful for Publisher and Subscriber), and passes its address.
Every check reads what the client itself parsed: the GAPIC clients with
transport="rest" (JSON over HTTP/1.1, `$alt=json;enum-encoding=int` on every
call), the library's batching publisher, the IAM mixin, api_core's
long-running operations client, and the same GAPIC client over gRPC.

    python test_pubsub_rest.py --gateway 127.0.0.1:PORT [-k NAME-FILTER]
"""

import argparse
import itertools
import os
import sys
import unittest

import grpc
from google.api_core import exceptions, operations_v1
from google.api_core.operations_v1.transports.rest import OperationsRestTransport
from google.auth.credentials import AnonymousCredentials
from google.cloud import pubsub_v1
from google.iam.v1 import iam_policy_pb2, policy_pb2
from google.longrunning import operations_proto_pb2
from google.pubsub_v1 import PublisherClient, SubscriberClient
from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
from google.pubsub_v1.types import PubsubMessage, Topic

GATEWAY = None  # host:port, from the command line
_names = itertools.count(1)
RUN = os.getpid()  # names stay fresh when a gateway serves several runs


def rest_options():
    return dict(
        transport="rest",
        client_options={"api_endpoint": f"http://{GATEWAY}"},
        credentials=AnonymousCredentials(),
    )


def project_name(label):
    """A project of this run: projects/interop-RUN-LABEL."""
    return f"projects/interop-{RUN}-{label}"


def fresh(kind, project):
    """A name nobody used yet: PROJECT/KIND/KIND-RUN-N."""
    return f"{project}/{kind}/{kind[:-1]}-{RUN}-{next(_names)}"


class PublisherRest(unittest.TestCase):
    project = project_name("publisher")

    @classmethod
    def setUpClass(cls):
        cls.client = PublisherClient(**rest_options())

    def test_topic_lifecycle(self):
        name = fresh("topics", self.project)
        created = self.client.create_topic(request={"name": name, "labels": {"team": "gateway"}})
        self.assertIsInstance(created, Topic)
        self.assertEqual(created.name, name)
        self.assertEqual(dict(created.labels), {"team": "gateway"})

        got = self.client.get_topic(topic=name)
        self.assertEqual(got, created)

        # Creating it again is ALREADY_EXISTS, which REST answers with 409.
        with self.assertRaises(exceptions.Conflict):
            self.client.create_topic(name=name)

        self.assertIsNone(self.client.delete_topic(topic=name))
        with self.assertRaises(exceptions.NotFound) as caught:
            self.client.get_topic(topic=name)
        # The error body is Google's {"error": {...}} (routes.yaml `errors:`),
        # so the client shows the gateway's message, not "unknown error".
        self.assertIn(f'"{name}" not found', caught.exception.message)
        with self.assertRaises(exceptions.NotFound):
            self.client.delete_topic(topic=name)

    def test_list_pages_in_creation_order(self):
        project = project_name("listing")
        names = [fresh("topics", project) for _ in range(5)]
        for name in names:
            self.client.create_topic(name=name)
        self.client.create_topic(name=fresh("topics", project_name("elsewhere")))

        pager = self.client.list_topics(request={"project": project, "page_size": 2})
        pages = list(pager.pages)
        self.assertEqual([len(p.topics) for p in pages], [2, 2, 1])
        self.assertTrue(all(p.next_page_token for p in pages[:-1]))
        self.assertEqual(pages[-1].next_page_token, "")
        listed = [t.name for p in pages for t in p.topics]
        self.assertEqual(listed, names)

        # The pager's own iteration reads every page, then ends.
        self.client.delete_topic(topic=names[0])
        self.assertEqual([t.name for t in self.client.list_topics(project=project)], names[1:])

    def test_publish_returns_one_id_per_message(self):
        name = fresh("topics", self.project)
        self.client.create_topic(name=name)
        messages = [
            PubsubMessage(data=b"one"),
            PubsubMessage(data=b"two", attributes={"k": "v"}),
            PubsubMessage(data=b"three", ordering_key="o"),
        ]
        first = self.client.publish(topic=name, messages=messages)
        self.assertEqual(len(first.message_ids), 3)
        second = self.client.publish(topic=name, messages=messages[:1])
        self.assertEqual(len(second.message_ids), 1)
        ids = list(first.message_ids) + list(second.message_ids)
        self.assertEqual(len(set(ids)), 4, ids)

        self.client.delete_topic(topic=name)
        with self.assertRaises(exceptions.NotFound):
            self.client.publish(topic=name, messages=messages)

    def test_publish_to_a_topic_never_created_is_not_found(self):
        with self.assertRaises(exceptions.NotFound):
            self.client.publish(
                topic=fresh("topics", self.project), messages=[PubsubMessage(data=b"x")]
            )

    def test_update_applies_the_mask(self):
        name = fresh("topics", self.project)
        created = self.client.create_topic(request={"name": name, "labels": {"a": "1"}})
        updated = self.client.update_topic(
            request={
                "topic": {"name": name, "labels": {"b": "2"}, "kms_key_name": "ignored"},
                "update_mask": {"paths": ["labels"]},
            }
        )
        self.assertEqual(dict(updated.labels), {"b": "2"})
        self.assertEqual(updated.kms_key_name, created.kms_key_name)
        self.assertEqual(self.client.get_topic(topic=name), updated)

    def test_the_batching_publisher(self):
        # google.cloud.pubsub_v1.PublisherClient: what applications use; it
        # batches in a background thread and resolves futures with the ids.
        publisher = pubsub_v1.PublisherClient(**rest_options())
        name = fresh("topics", self.project)
        publisher.create_topic(name=name)
        futures = [publisher.publish(name, f"m{i}".encode(), n=str(i)) for i in range(3)]
        ids = [f.result(timeout=30) for f in futures]
        self.assertEqual(len(set(ids)), 3, ids)
        missing = publisher.publish(fresh("topics", self.project), b"x")
        self.assertIsInstance(missing.exception(timeout=30), exceptions.NotFound)


class SubscriberRest(unittest.TestCase):
    project = project_name("subscriber")

    @classmethod
    def setUpClass(cls):
        cls.publisher = PublisherClient(**rest_options())
        cls.client = SubscriberClient(**rest_options())

    def test_subscription_lifecycle(self):
        project = project_name("lifecycle")  # listed whole below
        topic = fresh("topics", project)
        self.publisher.create_topic(name=topic)
        name = fresh("subscriptions", project)
        created = self.client.create_subscription(
            name=name, topic=topic, ack_deadline_seconds=42
        )
        self.assertEqual((created.name, created.topic), (name, topic))
        self.assertEqual(created.ack_deadline_seconds, 42)
        self.assertEqual(self.client.get_subscription(subscription=name), created)
        with self.assertRaises(exceptions.Conflict):
            self.client.create_subscription(name=name, topic=topic)

        listed = [s.name for s in self.client.list_subscriptions(project=project)]
        self.assertEqual(listed, [name])

        # Custom methods on a stored subscription answer (generated)...
        pulled = self.client.pull(subscription=name, max_messages=2)
        self.assertIsInstance(list(pulled.received_messages), list)
        self.assertIsNone(self.client.acknowledge(subscription=name, ack_ids=["a"]))

        # ...and NOT_FOUND once it is gone.
        self.assertIsNone(self.client.delete_subscription(subscription=name))
        for call in (
            lambda: self.client.get_subscription(subscription=name),
            lambda: self.client.pull(subscription=name, max_messages=1),
            lambda: self.client.delete_subscription(subscription=name),
        ):
            with self.assertRaises(exceptions.NotFound):
                call()
        # Deleting the subscription left its topic alone.
        self.assertEqual(self.publisher.get_topic(topic=topic).name, topic)

    def test_a_subscription_needs_its_topic(self):
        with self.assertRaises(exceptions.NotFound):
            self.client.create_subscription(
                name=fresh("subscriptions", self.project),
                topic=fresh("topics", self.project),
            )

    def test_snapshot_lifecycle(self):
        # CreateSnapshotRequest names the snapshot and carries its labels.
        topic = fresh("topics", self.project)
        self.publisher.create_topic(name=topic)
        subscription = fresh("subscriptions", self.project)
        self.client.create_subscription(name=subscription, topic=topic)
        name = fresh("snapshots", self.project)
        with self.assertRaises(exceptions.NotFound):
            self.client.create_snapshot(
                name=name, subscription=fresh("subscriptions", self.project)
            )
        made = self.client.create_snapshot(
            request={"name": name, "subscription": subscription, "labels": {"k": "v"}}
        )
        self.assertEqual((made.name, dict(made.labels)), (name, {"k": "v"}))
        self.assertEqual(self.client.get_snapshot(snapshot=name), made)
        listed = [s.name for s in self.client.list_snapshots(project=self.project)]
        self.assertEqual(listed, [name])
        self.assertIsNone(self.client.delete_snapshot(snapshot=name))
        with self.assertRaises(exceptions.NotFound):
            self.client.get_snapshot(snapshot=name)


class IamMixinRest(unittest.TestCase):
    """The IAM methods the Pub/Sub client carries (google.iam.v1.IAMPolicy,
    generated answers: IAM is not stateful here)."""

    @classmethod
    def setUpClass(cls):
        cls.client = PublisherClient(**rest_options())
        cls.topic = fresh("topics", project_name("iam"))
        cls.client.create_topic(name=cls.topic)

    def test_get_set_and_test(self):
        # getIamPolicy is a GET in Pub/Sub's service config (routes.yaml
        # carries that rule); set and test are the proto's {resource=**} POSTs.
        policy = self.client.get_iam_policy(request={"resource": self.topic})
        self.assertIsInstance(policy, policy_pb2.Policy)
        binding = {"role": "roles/pubsub.viewer", "members": ["user:ann@example.com"]}
        policy = self.client.set_iam_policy(
            request={"resource": self.topic, "policy": {"bindings": [binding]}}
        )
        self.assertIsInstance(policy, policy_pb2.Policy)
        asked = ["pubsub.topics.get", "pubsub.topics.publish"]
        allowed = self.client.test_iam_permissions(
            request={"resource": self.topic, "permissions": asked}
        )
        self.assertIsInstance(allowed, iam_policy_pb2.TestIamPermissionsResponse)
        self.assertTrue(set(allowed.permissions) <= set(asked), allowed.permissions)


class OperationsRest(unittest.TestCase):
    """api_core's google.longrunning client over the proto's own bindings
    (its defaults are /v1/{name=**}/operations, which the proto does not
    declare, so the test gives it the proto's through http_options)."""

    @classmethod
    def setUpClass(cls):
        prefix = "google.longrunning.Operations."
        bindings = {
            "ListOperations": [{"method": "get", "uri": "/v1/{name=operations}"}],
            "GetOperation": [{"method": "get", "uri": "/v1/{name=operations/**}"}],
            "DeleteOperation": [{"method": "delete", "uri": "/v1/{name=operations/**}"}],
            "CancelOperation": [
                {"method": "post", "uri": "/v1/{name=operations/**}:cancel", "body": "*"}
            ],
        }
        transport = OperationsRestTransport(
            host=f"http://{GATEWAY}",
            credentials=AnonymousCredentials(),
            http_options={prefix + k: v for k, v in bindings.items()},
        )
        cls.client = operations_v1.AbstractOperationsClient(transport=transport)

    def test_get_list_delete_cancel(self):
        op = self.client.get_operation("operations/export-7")
        self.assertIsInstance(op, operations_proto_pb2.Operation)
        self.assertEqual(op.name, "operations/export-7")
        # A generated collection ends, so reading every page terminates.
        ops = list(self.client.list_operations("operations", filter_="", page_size=10))
        self.assertTrue(0 < len(ops) <= 100, len(ops))
        self.assertIsNone(self.client.delete_operation("operations/export-7"))
        self.assertIsNone(self.client.cancel_operation("operations/export-7"))


class PublisherGrpc(unittest.TestCase):
    """The same GAPIC client over native gRPC, through the same gateway and
    the same stateful store."""

    @classmethod
    def setUpClass(cls):
        cls.channel = grpc.insecure_channel(GATEWAY)
        cls.client = PublisherClient(transport=PublisherGrpcTransport(channel=cls.channel))
        cls.rest = PublisherClient(**rest_options())

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()

    def test_the_store_is_shared_with_rest(self):
        name = fresh("topics", project_name("grpc"))
        self.client.create_topic(name=name)
        self.assertEqual(self.rest.get_topic(topic=name).name, name)
        ids = self.client.publish(topic=name, messages=[PubsubMessage(data=b"x")] * 2)
        self.assertEqual(len(ids.message_ids), 2)
        self.rest.delete_topic(topic=name)
        with self.assertRaises(exceptions.NotFound):
            self.client.get_topic(topic=name)
        with self.assertRaises(exceptions.NotFound):
            self.client.publish(topic=name, messages=[PubsubMessage(data=b"x")])


def main():
    global GATEWAY
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True, help="host:port")
    args, rest = parser.parse_known_args()
    GATEWAY = args.gateway
    unittest.main(argv=[sys.argv[0], "-v", *rest])


if __name__ == "__main__":
    main()
