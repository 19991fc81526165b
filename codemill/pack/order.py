"""Dependency order of a repository's files (DeepSeek-Coder §2.2, Algorithm 1).

Split the file graph into connected subgraphs (union-find over the edges, direction
ignored). In each subgraph, repeatedly take the unvisited file with the *minimum*
number of unvisited dependencies and then count it as visited for its dependents. A
plain topological sort stalls on a cycle; taking the minimum (not only zero) breaks the
cycle at its least-dependent file, so every file is kept. Ties are broken by a random
priority drawn from the caller's seeded generator, so the order is reproducible.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

import numpy as np

Graph = dict[str, set[str]]  # file -> the files it depends on


class _UnionFind:
    def __init__(self, items):
        self.parent = {x: x for x in items}

    def find(self, x):
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def components(graph: Graph) -> list[list[str]]:
    """Connected subgraphs (edges undirected), each sorted, ordered by their first path."""
    uf = _UnionFind(sorted(graph))
    for node, deps in graph.items():
        for dep in deps:
            if dep in graph:
                uf.union(node, dep)
    groups: dict[str, list[str]] = defaultdict(list)
    for node in sorted(graph):
        groups[uf.find(node)].append(node)
    return sorted(groups.values(), key=lambda g: g[0])


def order_component(graph: Graph, nodes: list[str], priority: dict[str, int]) -> tuple[list[str], int]:
    """Dependencies before dependents; returns the order and how many cycles were broken."""
    members = set(nodes)
    indegree = {n: len(graph[n] & members) for n in nodes}
    dependents: dict[str, list[str]] = defaultdict(list)
    for n in nodes:
        for dep in sorted(graph[n] & members):
            dependents[dep].append(n)
    heap = [(indegree[n], priority[n], n) for n in nodes]
    heapq.heapify(heap)
    visited: set[str] = set()
    order, broken = [], 0
    while heap:
        deg, _, node = heapq.heappop(heap)
        if node in visited or deg != indegree[node]:
            continue  # a stale entry: the file's count dropped since it was pushed
        visited.add(node)
        order.append(node)
        broken += deg > 0
        for d in dependents[node]:
            if d not in visited:
                indegree[d] -= 1
                heapq.heappush(heap, (indegree[d], priority[d], d))
    return order, broken


def dependency_order(graph: Graph, rng: np.random.Generator) -> tuple[list[list[str]], int]:
    """Every subgraph in dependency order, and the total number of cycles broken."""
    nodes = sorted(graph)
    priority = dict(zip(nodes, rng.permutation(len(nodes)).tolist()))
    ordered, broken = [], 0
    for group in components(graph):
        order, b = order_component(graph, group, priority)
        ordered.append(order)
        broken += b
    return ordered, broken
