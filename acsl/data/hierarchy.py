"""A class hierarchy (Open Images' label tree) and the expansions the challenge applies with it.

Open Images labels form a tree under the root "Entity" (``/m/0bl9f``): a box of "Jaguar" is also a box of
"Cat", "Carnivore", "Mammal" and "Animal". The challenge trains and evaluates with the labels expanded
(Kuznetsova et al., "The Open Images Dataset V4", IJCV 2020, §5; the challenge's
``oid_hierarchical_labels_expansion`` tool):

- a box (or a detection) of class c is also a box (detection) of every ancestor of c;
- a positive image-level label c makes every ancestor of c positive;
- a verified negative image-level label c makes every descendant of c negative (if there is no cat,
  there is no jaguar).

Classes here are hashable keys: the label names ("/m/…") in the reader, integer ids in the datasets.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

OPENIMAGES_ROOT = "/m/0bl9f"  # "Entity": the root of the tree, not a class of its own


class ClassHierarchy:
    """Parent links of a DAG of classes (Open Images' is a tree, but a class may be listed under two
    parents, and that is kept). ``parents[c]`` are the direct parents of c."""

    def __init__(self, parents: Mapping[Hashable, Iterable[Hashable]]) -> None:
        self.parents: dict[Hashable, tuple[Hashable, ...]] = {c: tuple(dict.fromkeys(p)) for c, p in parents.items()}
        self._ancestors: dict[Hashable, frozenset] = {}
        children: dict[Hashable, list] = {}
        for child, parent_list in self.parents.items():
            for parent in parent_list:
                children.setdefault(parent, []).append(child)
        self.children = {c: tuple(k) for c, k in children.items()}
        for c in list(self.parents):
            self.ancestors(c)  # fails here on a cycle

    @classmethod
    def from_category_json(cls, hierarchy: Mapping[str, Iterable[int]]) -> ClassHierarchy:
        """The ``hierarchy`` field of the internal Open Images form (category id as a JSON string → parent ids)."""
        return cls({int(c): [int(p) for p in ps] for c, ps in hierarchy.items()})

    def ancestors(self, c: Hashable) -> frozenset:
        """Every class above ``c`` (not ``c`` itself)."""
        if c in self._ancestors:
            return self._ancestors[c]
        found: set = set()
        stack, on_path = [(c, iter(self.parents.get(c, ())))], {c}
        while stack:
            node, parents = stack[-1]
            parent = next(parents, None)
            if parent is None:
                stack.pop()
                on_path.discard(node)
                continue
            if parent in on_path:
                raise ValueError(f"the class hierarchy has a cycle through {parent!r}")
            found.add(parent)
            if parent not in self._ancestors:
                stack.append((parent, iter(self.parents.get(parent, ()))))
                on_path.add(parent)
            else:
                found |= self._ancestors[parent]
        self._ancestors[c] = frozenset(found)
        return self._ancestors[c]

    def descendants(self, c: Hashable) -> frozenset:
        """Every class below ``c`` (not ``c`` itself)."""
        found: set = set()
        stack = list(self.children.get(c, ()))
        while stack:
            node = stack.pop()
            if node not in found:
                found.add(node)
                stack.extend(self.children.get(node, ()))
        return frozenset(found)

    def with_ancestors(self, c: Hashable) -> tuple:
        """``c`` followed by its ancestors (sorted by their repr for a stable order)."""
        return (c, *sorted(self.ancestors(c), key=repr))

    def expand_positive(self, labels: Iterable[Hashable]) -> set:
        """Positive labels with every ancestor added."""
        out: set = set()
        for c in labels:
            out.add(c)
            out |= self.ancestors(c)
        return out

    def expand_negative(self, labels: Iterable[Hashable]) -> set:
        """Verified negative labels with every descendant added."""
        out: set = set()
        for c in labels:
            out.add(c)
            out |= self.descendants(c)
        return out

    def relabel(self, mapping: Mapping[Hashable, Hashable]) -> ClassHierarchy:
        """The same hierarchy over new keys (e.g. label names → category ids); classes without a key are
        dropped, and a dropped class's parents are linked through, so no ancestry is lost."""
        parents: dict[Hashable, list] = {}
        for child in set(self.parents) | set(self.children):
            if child not in mapping:
                continue
            kept: list = []
            stack = list(self.parents.get(child, ()))
            seen: set = set()
            while stack:
                parent = stack.pop(0)
                if parent in seen:
                    continue
                seen.add(parent)
                if parent in mapping:
                    kept.append(mapping[parent])
                else:
                    stack.extend(self.parents.get(parent, ()))
            parents[mapping[child]] = kept
        return ClassHierarchy(parents)

    def to_json(self) -> dict[str, list]:
        return {str(c): [str(p) for p in ps] for c, ps in self.parents.items()}


def hierarchy_from_tree(tree: Mapping[str, Any], root: str | None = OPENIMAGES_ROOT,
                        source: str = "hierarchy") -> ClassHierarchy:
    """Parse Open Images' label-hierarchy JSON (``{"LabelName": …, "Subcategory": [{…}, …]}``) into parent
    links; the root (``/m/0bl9f``, "Entity") is not a class, so its children have no parent. ``source``
    names the file in errors."""
    parents: dict[str, list[str]] = {}

    def visit(node: Any, parent: str | None, path: str) -> None:
        if not isinstance(node, Mapping) or not isinstance(node.get("LabelName"), str):
            raise ValueError(f"{source}: {path}: expected an object with a string 'LabelName', got {str(node)[:80]!r}")
        name = node["LabelName"]
        if name != root:
            entry = parents.setdefault(name, [])
            if parent is not None and parent != root and parent not in entry:
                entry.append(parent)
        subcategories = node.get("Subcategory", [])
        if not isinstance(subcategories, list):
            raise ValueError(f"{source}: {path}.Subcategory: expected a list, got {type(subcategories).__name__}")
        for i, child in enumerate(subcategories):
            visit(child, name, f"{path}.Subcategory[{i}]")

    visit(tree, None, "$")
    return ClassHierarchy(parents)


def load_hierarchy(path: str | Path) -> ClassHierarchy:
    """``hierarchy_from_tree`` of a JSON file, with the file named in every error."""
    path = Path(path)
    try:
        tree = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise FileNotFoundError(f"label hierarchy file not found: {path}") from error
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a parseable JSON file ({error})") from error
    return hierarchy_from_tree(tree, source=str(path))
