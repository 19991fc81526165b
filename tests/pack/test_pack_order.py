"""Dependency order: connected subgraphs, minimum in-degree first, cycles kept, seeded ties."""

from __future__ import annotations

import numpy as np

from codemill.pack.order import components, dependency_order

# Two components. The first has a cycle b -> c -> d -> b that a plain topological sort
# would stall on; a is a dependency of b and e, e depends on everything. The second is
# x <- y <- z, plus an isolated file.
GRAPH = {
    "a.py": set(),
    "b.py": {"a.py", "d.py"},
    "c.py": {"b.py"},
    "d.py": {"c.py"},
    "e.py": {"a.py", "b.py", "c.py", "d.py"},
    "x.py": set(),
    "y.py": {"x.py"},
    "z.py": {"y.py"},
    "lonely.py": set(),
}


def test_components_split_the_graph_ignoring_direction():
    assert components(GRAPH) == [["a.py", "b.py", "c.py", "d.py", "e.py"], ["lonely.py"], ["x.py", "y.py", "z.py"]]


def test_every_file_is_ordered_once_with_dependencies_first_and_the_cycle_broken():
    ordered, broken = dependency_order(GRAPH, np.random.default_rng(0))
    assert ordered[1] == ["lonely.py"] and ordered[2] == ["x.py", "y.py", "z.py"]
    first = ordered[0]
    assert sorted(first) == ["a.py", "b.py", "c.py", "d.py", "e.py"]  # nothing dropped
    assert first[0] == "a.py"  # in-degree 0
    assert first[-1] == "e.py"  # needs the whole cycle
    # after a, each cycle member has one unvisited dependency: the cycle is broken once at
    # a seeded choice, then each file comes right after the file it depends on
    assert broken == 1
    next_in_ring = {"b.py": "c.py", "c.py": "d.py", "d.py": "b.py"}  # c depends on b, d on c, b on d
    assert first[2] == next_in_ring[first[1]] and first[3] == next_in_ring[first[2]]


def test_ties_are_broken_by_the_seed_reproducibly():
    star = {"hub.py": set(), **{f"m{i}.py": {"hub.py"} for i in range(12)}}  # one component
    orders = {tuple(dependency_order(star, np.random.default_rng([s, 1]))[0][0]) for s in range(5)}
    assert len(orders) > 1  # the seed decides among equals
    assert all(order[0] == "hub.py" for order in orders)
    again = dependency_order(star, np.random.default_rng([3, 1]))[0][0]
    assert again == dependency_order(star, np.random.default_rng([3, 1]))[0][0]


def test_which_cycle_member_goes_first_depends_on_the_seed_only():
    ring = {"p.py": {"r.py"}, "q.py": {"p.py"}, "r.py": {"q.py"}}
    firsts = {dependency_order(ring, np.random.default_rng(s))[0][0][0] for s in range(20)}
    assert firsts == {"p.py", "q.py", "r.py"}
    for seed in range(20):
        order = dependency_order(ring, np.random.default_rng(seed))[0][0]
        head = order[0]
        # after the break, each file comes right after the file it depends on
        assert order == [
            head,
            {"p.py": "q.py", "q.py": "r.py", "r.py": "p.py"}[head],
            {"p.py": "r.py", "q.py": "p.py", "r.py": "q.py"}[head],
        ]
