"""Whole layers as single ONNX nodes: ``MultiheadAttention`` and ``TransformerEncoderLayer``.

The tracer sees operations, so a transformer layer arrives as some forty nodes
(projections, reshapes, ``MatMul``, ``Softmax``, ``LayerNormalization``,
residual ``Add``). ONNX can name such a group: a *function* (``FunctionProto``)
is a small graph with inputs and outputs that a node calls by name, and a
runtime inlines it. Here every call of a layer listed in
:data:`~nnlite.onnx.trace.GROUPED_TYPES` becomes one node of the ``nnlite``
domain, so a viewer shows ``TransformerEncoderLayer`` with its attention
inside, as the model was written.

*Outlining* a call takes the nodes of its operations out of the graph. What
they read from outside (the layer's input, the parameters, constants) becomes
the function's inputs; what is read after them becomes its outputs. Layers
that compute the same thing share one function: bodies are compared after
renaming their values to ``x0, x1, ...`` in order of appearance, and identical
layers (all layers of an encoder) call one definition. Innermost layers go
first, so an encoder layer's function calls the attention's function. When a
group cannot be outlined without breaking the order of the graph, its
operations simply stay in the graph.
"""
__all__ = ["outline_groups"]

DOMAIN = "nnlite"


def _topological(nodes, available):
    """``nodes`` in an order where every input is made before it is read, or None if there is none."""
    ready, order, pending = set(available), [], list(nodes)
    while pending:
        progressed = False
        rest = []
        for node in pending:
            if all(not name or name in ready for name in node.input):
                order.append(node)
                ready.update(node.output)
                progressed = True
            else:
                rest.append(node)
        if not progressed:
            return None
        pending = rest
    return order


def _roles(builder, group, inputs):
    """What each outside value means to the layer, independent of the layer's position in the model.

    The layer's own arguments by position, its parameters by their name inside the layer
    (``in_proj_weight``, ``linear1.weight``), constants by their content. Two layers whose
    bodies read values of the same roles in the same way compute the same function.
    """
    args = {builder.values.get(id(t)): i for i, t in enumerate(group.inputs)}
    constants = {i.name: i for i in builder.initializers}
    prefix = group.name + "." if group.name else ""
    roles = {}
    for name in inputs:
        if name in args:
            roles[name] = ("0 argument", str(args[name]))
        elif name in builder.parameter_names and name.startswith(prefix):
            roles[name] = ("1 parameter", name[len(prefix):])
        elif name in constants and name not in builder.parameter_names:
            proto = constants[name]
            roles[name] = ("2 constant", f"{proto.data_type}:{list(proto.dims)}:{proto.raw_data.hex()}")
        else:
            roles[name] = ("3 other", name)   # never shared: keeps the layer's own function
    return roles


def _canonical_body(helper, nodes, inputs, outputs, roles):
    """The body in a canonical order with values renamed x0, x1, ...; formal inputs sorted by role.

    Nodes are taken in a topological order that breaks ties by a structural key (the
    operation, its attributes and the keys of what it reads), so two layers built alike
    give byte-identical bodies whatever order the trace visited them in.
    """
    ordered_inputs = sorted(inputs, key=lambda n: roles[n])
    key_of = {name: repr(roles[name]) for name in inputs}
    producer = {}
    for node in nodes:
        for name in node.output:
            producer[name] = node
    order, ready_names, pending = [], set(inputs), list(nodes)
    while pending:
        ready = [n for n in pending if all(not i or i in ready_names for i in n.input)]
        if not ready:
            return None
        def structural(node):
            attributes = b"".join(a.SerializeToString() for a in node.attribute)
            return (node.op_type, attributes.hex(), tuple(key_of.get(i, "") for i in node.input))
        node = min(ready, key=structural)
        key = repr(structural(node))
        for k, name in enumerate(node.output):
            key_of[name] = f"{key}#{k}"
            ready_names.add(name)
        order.append(node)
        pending.remove(node)
    rename = {}
    for name in ordered_inputs:
        rename[name] = f"x{len(rename)}"
    for node in order:
        for name in node.output:
            rename.setdefault(name, f"x{len(rename)}")
    body = []
    for node in order:
        copy = helper.make_node(node.op_type, [rename.get(n, n) if n else "" for n in node.input],
                                [rename[n] for n in node.output], domain=node.domain or None)
        copy.attribute.extend(node.attribute)
        body.append(copy)
    return body, ordered_inputs, [rename[n] for n in ordered_inputs], [rename[n] for n in outputs]


def outline_groups(builder, tags, groups, graph_inputs, graph_outputs, opset):
    """Replace each group's nodes by one call of a shared function; return (nodes, functions).

    ``tags[i]`` is the set of group indices whose operations made ``builder.nodes[i]``.
    """
    helper = builder.helper
    nodes, tags = list(builder.nodes), [set(t) for t in tags]
    functions, by_body = [], {}
    call_names = set()   # ONNX wants node names unique; a layer called twice makes two calls
    initializers = {i.name for i in builder.initializers}
    available = set(graph_inputs) | initializers
    # innermost first: a group inside another has fewer operations
    for index in sorted(range(len(groups)), key=lambda g: len(groups[g].functions)):
        members = [i for i, t in enumerate(tags) if index in t]
        if not members:
            continue
        inside = [nodes[i] for i in members]
        made = [name for node in inside for name in node.output]
        made_set = set(made)
        inputs = []
        for node in inside:
            for name in node.input:
                if name and name not in made_set and name not in inputs:
                    inputs.append(name)
        member_set = set(members)
        read_after = {name for i, node in enumerate(nodes) if i not in member_set for name in node.input}
        read_after |= set(graph_outputs)
        outputs = [name for name in made if name in read_after]
        canonical = _canonical_body(helper, inside, inputs, outputs, _roles(builder, groups[index], inputs))
        if canonical is None:      # not a closed group of operations: leave it inline
            for i in members:
                tags[i].discard(index)
            continue
        body, inputs, formal_in, formal_out = canonical
        kind = type(groups[index].module).__name__
        key = (kind, b"".join(n.SerializeToString() for n in body), len(formal_in), len(formal_out))
        name = by_body.get(key)
        new_function = name is None
        if new_function:
            count = sum(1 for k in by_body if k[0] == kind)
            name = kind if count == 0 else f"{kind}_{count}"
            function = helper.make_function(DOMAIN, name, formal_in, formal_out, body,
                                            [helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, 1)])
            function.doc_string = f"nnlite {kind}, first traced as {groups[index].name}"
        call_name, k = groups[index].name, 1
        while call_name in call_names:
            call_name, k = f"{groups[index].name}_{k}", k + 1
        call = helper.make_node(name, inputs, outputs, domain=DOMAIN, name=call_name)
        outer = set.intersection(*(tags[i] for i in members)) - {index}
        kept = [(n, t) for i, (n, t) in enumerate(zip(nodes, tags)) if i not in member_set] + [(call, outer)]
        order = _topological([n for n, _ in kept], available)
        if order is None:          # outlining would break the graph's order: leave the group inline
            for i in members:
                tags[i].discard(index)
            continue
        if new_function:
            by_body[key] = name
            functions.append(function)
        call_names.add(call_name)
        tag_of = {id(n): t for n, t in kept}
        nodes, tags = order, [tag_of[id(n)] for n in order]
    return nodes, functions
