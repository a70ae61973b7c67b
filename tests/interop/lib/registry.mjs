// The example API's descriptors, loaded at run time (no code generation):
// `descriptors/library.binpb` is a FileDescriptorSet, turned into a
// @bufbuild/protobuf v2 registry. Runs in Node and, bundled, in a browser.
//
// The set does not include google/rpc/{status,error_details}.proto (the
// gateway does not need them), so the few google.rpc messages the checks
// decode are described here by hand, field for field as in
// descriptors/google/rpc/*.proto (only those the set lacks).

import { create, createFileRegistry, fromBinary } from '@bufbuild/protobuf';
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from '@bufbuild/protobuf/wkt';

function field(name, number, type, extra = {}) {
  const jsonName = name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
  return { name, number, type, label: Label.OPTIONAL, jsonName, ...extra };
}

const string = (name, number) => field(name, number, Type.STRING);

/**
 * google.rpc.Status and the error details the example backend sends, those
 * of them `library` lacks; undefined when it has them all.
 */
function googleRpcFile(library) {
  const proto = create(FileDescriptorProtoSchema, {
    name: 'google/rpc/protogate_interop.proto',
    package: 'google.rpc',
    syntax: 'proto3',
    dependency: ['google/protobuf/any.proto'],
    messageType: [
      {
        name: 'Status',
        field: [
          field('code', 1, Type.INT32),
          string('message', 2),
          field('details', 3, Type.MESSAGE, { label: Label.REPEATED, typeName: '.google.protobuf.Any' }),
        ],
      },
      {
        name: 'ResourceInfo',
        field: [string('resource_type', 1), string('resource_name', 2), string('owner', 3), string('description', 4)],
      },
      {
        name: 'BadRequest',
        field: [field('field_violations', 1, Type.MESSAGE, {
          label: Label.REPEATED, typeName: '.google.rpc.BadRequest.FieldViolation',
        })],
        nestedType: [{
          name: 'FieldViolation',
          field: [string('field', 1), string('description', 2), string('reason', 3)],
        }],
      },
    ],
  });
  proto.messageType = proto.messageType.filter((m) => !library.getMessage(`google.rpc.${m.name}`));
  if (proto.messageType.length === 0) return undefined;
  return createFileRegistry(proto, (name) => library.getFile(name));
}

/**
 * The registry of `library.binpb` plus google.rpc's Status, ResourceInfo
 * and BadRequest, with the schemas the checks use.
 */
export function loadRegistry(bytes) {
  const library = createFileRegistry(fromBinary(FileDescriptorSetSchema, bytes));
  const rpc = googleRpcFile(library);
  const registry = rpc ? createFileRegistry(library, rpc) : library;
  const need = (get, name) => {
    const d = get.call(registry, name);
    if (!d) throw new Error(`descriptor ${name} not in the registry`);
    return d;
  };
  return {
    registry,
    service: need(registry.getService, 'library.v1.LibraryService'),
    Book: need(registry.getMessage, 'library.v1.Book'),
    GetBookRequest: need(registry.getMessage, 'library.v1.GetBookRequest'),
    StreamBooksRequest: need(registry.getMessage, 'library.v1.StreamBooksRequest'),
    Status: need(registry.getMessage, 'google.rpc.Status'),
    ResourceInfo: need(registry.getMessage, 'google.rpc.ResourceInfo'),
    BadRequest: need(registry.getMessage, 'google.rpc.BadRequest'),
  };
}

/** What the example backend holds on shelf 1 (examples/library_server). */
export const SHELF1_TITLES = ['The Left Hand of Darkness', 'Beloved', 'Good Omens'];
