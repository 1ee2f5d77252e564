"""The embedded clients against confluent-kafka's own API description.

confluent-kafka ships the signatures of its C classes as a type stub (cimpl.pyi); its
AdminClient and admin value types are Python. For every public name of txn's Producer,
Consumer, Message, TopicPartition, KafkaError, NewTopic, NewPartitions and AdminClient, and
of the admin value types: the name exists on confluent-kafka's class, positional parameters
have the same names in the same order, every keyword parameter exists there, required
parameters agree, and literal defaults are equal. Then the other way round: every method of
confluent-kafka's Producer, Consumer, Message and TopicPartition exists here, every
KafkaError code has the same number, and the module constants agree. A missing or misspelled
name or argument fails here."""

from __future__ import annotations

import ast
import enum
import inspect
import pathlib
from dataclasses import dataclass

import confluent_kafka
import confluent_kafka.admin as ck_admin
import pytest

import txn
from txn import admin_types
from txn.admin import AdminClient

STUB = pathlib.Path(confluent_kafka.__file__).with_name("cimpl.pyi")
NO_DEFAULT = object()
UNKNOWN_DEFAULT = object()
# Classes compared with the stub: txn class -> stub class name.
STUBBED = {txn.Producer: "Producer", txn.Consumer: "Consumer", txn.Message: "Message",
           txn.TopicPartition: "TopicPartition", txn.KafkaError: "KafkaError",
           txn.NewTopic: "NewTopic", txn.NewPartitions: "NewPartitions"}
# txn exports confluent-kafka has under another form (consumer_group_metadata()'s result is
# an opaque bytes object there).
EXPORTS_WITHOUT_COUNTERPART = {"ConsumerGroupMetadata"}


@dataclass(frozen=True)
class Param:
    name: str
    positional: bool
    default: object


def _default(node):
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return UNKNOWN_DEFAULT
    return UNKNOWN_DEFAULT if value is Ellipsis else value      # "= ...": some default


def _stub_params(fn: ast.FunctionDef) -> list[Param]:
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults = [NO_DEFAULT] * (len(positional) - len(args.defaults)) + \
        [_default(d) for d in args.defaults]
    params = [Param(a.arg, True, d) for a, d in zip(positional, defaults)]
    params += [Param(a.arg, False, NO_DEFAULT if d is None else _default(d))
               for a, d in zip(args.kwonlyargs, args.kw_defaults)]
    if args.vararg is not None:
        params.append(Param("*" + args.vararg.arg, False, NO_DEFAULT))
    if args.kwarg is not None:
        params.append(Param("**" + args.kwarg.arg, False, NO_DEFAULT))
    return params[1:] if params and params[0].name == "self" else params


def _stub_classes() -> dict[str, dict]:
    """{class: {"methods": {name: [overloads' params]}, "attributes": set}} from cimpl.pyi."""
    tree = ast.parse(STUB.read_text())
    classes = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        methods, attributes = {}, set()
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                methods.setdefault(item.name, []).append(_stub_params(item))
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                attributes.add(item.target.id)
        classes[node.name] = {"methods": methods, "attributes": attributes}
    return classes


STUBS = _stub_classes()


def _our_params(fn) -> list[Param]:
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.VAR_POSITIONAL:
            out.append(Param("*" + p.name, False, NO_DEFAULT))
        elif p.kind is p.VAR_KEYWORD:
            out.append(Param("**" + p.name, False, NO_DEFAULT))
        else:
            out.append(Param(p.name, p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD),
                             NO_DEFAULT if p.default is p.empty else p.default))
    return out


def _same_default(ours, theirs) -> bool:
    if isinstance(ours, enum.Enum) and isinstance(theirs, enum.Enum):
        return (ours.name, ours.value) == (theirs.name, theirs.value)
    return ours == theirs


def _public(cls) -> dict[str, object]:
    return {name: value for name, value in vars(cls).items() if not name.startswith("_")}


def _compare(where: str, ours: list[Param], theirs: list[Param]) -> list[str]:
    """Problems of our parameter list against one of confluent-kafka's."""
    problems = []
    names = {p.name for p in theirs}
    accepts_any = any(p.name.startswith("**") for p in theirs)
    their_positional = [p for p in theirs if p.positional]
    for i, p in enumerate(q for q in ours if q.positional):
        if i >= len(their_positional) or their_positional[i].name != p.name:
            problems.append(f"{where}: positional parameter {i} is {p.name!r}, confluent-kafka "
                            f"has {[q.name for q in their_positional]}")
    for p in ours:
        if p.name.startswith("*"):
            continue
        if p.name not in names and not accepts_any:
            problems.append(f"{where}: parameter {p.name!r} does not exist in confluent-kafka "
                            f"({sorted(names)})")
            continue
        theirs_p = next((q for q in theirs if q.name == p.name), None)
        if theirs_p is None:
            continue
        if p.default is NO_DEFAULT and theirs_p.default is not NO_DEFAULT:
            problems.append(f"{where}: {p.name!r} is required here but optional there")
        if (p.default is not NO_DEFAULT and theirs_p.default not in (NO_DEFAULT,
                                                                     UNKNOWN_DEFAULT)
                and not _same_default(p.default, theirs_p.default)):
            problems.append(f"{where}: {p.name!r} defaults to {p.default!r}, confluent-kafka "
                            f"to {theirs_p.default!r}")
    ours_names = {p.name for p in ours}
    for q in theirs:
        if (q.default is NO_DEFAULT and not q.name.startswith("*")
                and q.name not in ours_names and not any(p.name.startswith("**") for p in ours)):
            problems.append(f"{where}: confluent-kafka requires {q.name!r}, missing here")
    return problems


@pytest.mark.parametrize("cls", list(STUBBED), ids=lambda c: c.__name__)
def test_every_public_name_exists_with_the_same_arguments(cls):
    stub = STUBS[STUBBED[cls]]
    runtime = getattr(confluent_kafka, STUBBED[cls], None) or getattr(ck_admin, STUBBED[cls])
    problems = []
    for name, value in _public(cls).items():
        if callable(value) and not isinstance(value, type):
            overloads = stub["methods"].get(name)
            if overloads is None:
                if not hasattr(runtime, name):       # the stub misses a few (set_topic)
                    problems.append(f"{cls.__name__}.{name} is not in confluent-kafka")
                continue
            ours = _our_params(value)
            found = [_compare(f"{cls.__name__}.{name}", ours, theirs) for theirs in overloads]
            if len(overloads) > 1:            # overloads: the union of their keywords
                merged = {p.name: p for theirs in overloads for p in theirs}
                found.append(_compare(f"{cls.__name__}.{name}", [
                    Param(p.name, False, p.default) for p in ours],
                    [Param(p.name, False, p.default) for p in merged.values()]))
            if all(found):
                problems += found[0]
        elif not name.isupper() and name not in stub["attributes"] \
                and name not in stub["methods"]:
            problems.append(f"{cls.__name__}.{name} is not a confluent-kafka attribute")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("cls", [txn.Producer, txn.Consumer, txn.Message, txn.TopicPartition,
                                 txn.KafkaError], ids=lambda c: c.__name__)
def test_every_confluent_method_exists_here(cls):
    theirs = {name for name in STUBS[STUBBED[cls]]["methods"] if not name.startswith("_")}
    missing = sorted(name for name in theirs if not hasattr(cls, name))
    assert not missing


def test_constructors_take_confluent_kafkas_arguments():
    problems = []
    for cls in (txn.Message, txn.TopicPartition, txn.KafkaError, txn.NewTopic,
                txn.NewPartitions):
        (theirs,) = STUBS[STUBBED[cls]]["methods"]["__init__"]
        problems += _compare(f"{cls.__name__}()", _our_params(cls.__init__), theirs)
    assert not problems, "\n".join(problems)


def test_admin_client_methods_match_confluent_kafkas():
    """Python methods of confluent_kafka.admin.AdminClient by their signature; the ones it
    inherits from the C _AdminClientImpl by the stub."""
    problems = []
    impl = STUBS["_AdminClientImpl"]["methods"]
    for name, value in _public(AdminClient).items():
        reference = getattr(ck_admin.AdminClient, name, None)
        if reference is None:
            problems.append(f"AdminClient.{name} is not in confluent-kafka")
        elif inspect.isfunction(reference) and not any(
                p.name.startswith("*") and not p.name.startswith("**")
                for p in _our_params(reference)):
            problems += _compare(f"AdminClient.{name}", _our_params(value),
                                 _our_params(reference))
        else:                                  # C methods, and (*args, **kwargs) forwarders
            problems += _compare(f"AdminClient.{name}", _our_params(value), impl[name][0])
    assert not problems, "\n".join(problems)


def _admin_type_pairs():
    for name in dir(admin_types):
        ours = getattr(admin_types, name)
        if not isinstance(ours, type) or ours.__module__ != admin_types.__name__:
            continue
        theirs = getattr(ck_admin, name, None) or getattr(confluent_kafka, name, None)
        if theirs is None:
            import confluent_kafka.admin._listoffsets as listoffsets
            theirs = getattr(listoffsets, name, None)
        yield name, ours, theirs


def test_admin_value_types_match_confluent_kafkas():
    problems = []
    for name, ours, theirs in _admin_type_pairs():
        if theirs is None:
            problems.append(f"{name} has no confluent-kafka counterpart")
            continue
        if issubclass(ours, __import__("enum").Enum):
            if {(m.name, m.value) for m in ours} != {(m.name, m.value) for m in theirs}:
                problems.append(f"{name}: enum members differ")
            continue
        if "__init__" in vars(ours) and inspect.isfunction(theirs.__init__):
            problems += _compare(f"{name}()", _our_params(ours.__init__),
                                 _our_params(theirs.__init__))
        for attr, value in _public(ours).items():
            if callable(value) and not hasattr(theirs, attr):
                problems.append(f"{name}.{attr} is not in confluent-kafka")
    assert not problems, "\n".join(problems)


def test_exports_and_constants():
    problems = []
    for name in txn.__all__:
        if name in EXPORTS_WITHOUT_COUNTERPART:
            continue
        theirs = getattr(confluent_kafka, name, getattr(ck_admin, name, NO_DEFAULT))
        if theirs is NO_DEFAULT:
            problems.append(f"txn.{name} is not exported by confluent_kafka")
        elif isinstance(theirs, int) and getattr(txn, name) != theirs:
            problems.append(f"txn.{name} = {getattr(txn, name)}, confluent_kafka has {theirs}")
    assert not problems, "\n".join(problems)


def test_every_kafka_error_code_has_confluent_kafkas_number_and_text():
    theirs = {name: getattr(confluent_kafka.KafkaError, name)
              for name in dir(confluent_kafka.KafkaError) if name.isupper() or
              (name.startswith("_") and name[1:2].isupper())}
    assert {name: getattr(txn.KafkaError, name, None) for name in theirs} == theirs
    for name, code in theirs.items():
        ours, ref = txn.KafkaError(code), confluent_kafka.KafkaError(code)
        assert (ours.name(), ours.str(), str(ours)) == (ref.name(), ref.str(), str(ref))


def test_the_compared_stub_is_the_real_one():
    assert "produce" in STUBS["Producer"]["methods"]
    assert [p.name for p in STUBS["Producer"]["methods"]["produce"][0]][:4] == \
        ["topic", "value", "key", "partition"]
