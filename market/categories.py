"""The category tree (대분류 > 중분류 > 소분류), seeded by migration and read once per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from market.db import Database
from market.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Category:
    id: int
    parent_id: int | None
    level: int
    name: str
    position: int


class Categories:
    """An in-memory copy of the tree; categories change only through migrations."""

    def __init__(self, rows: list[Category]) -> None:
        self._by_id = {c.id: c for c in rows}
        self._children: dict[int | None, list[Category]] = {}
        for c in sorted(rows, key=lambda c: (c.position, c.id)):
            self._children.setdefault(c.parent_id, []).append(c)

    @classmethod
    async def load(cls, db: Database) -> Categories:
        rows = await db.fetchall("SELECT id, parent_id, level, name, position FROM categories")
        return cls([Category(**r) for r in rows])

    def get(self, category_id: int) -> Category:
        try:
            return self._by_id[category_id]
        except KeyError:
            raise InvalidInput("category.not_found", field="category_id") from None

    def children(self, parent_id: int | None) -> list[Category]:
        return list(self._children.get(parent_id, []))

    def path(self, category_id: int) -> list[Category]:
        """Root first: [대분류, 중분류, 소분류]."""
        out = []
        node: Category | None = self.get(category_id)
        while node is not None:
            out.append(node)
            node = self._by_id.get(node.parent_id) if node.parent_id is not None else None
        return list(reversed(out))

    def leaf(self, category_id: int) -> list[Category]:
        """The path of a third-level category; anything else is refused."""
        path = self.path(category_id)
        if len(path) != 3:
            raise InvalidInput("category.not_leaf", field="category_id")
        return path

    def tree(self) -> list[dict[str, Any]]:
        def node(c: Category) -> dict[str, Any]:
            return {"id": c.id, "name": c.name, "level": c.level,
                    "children": [node(k) for k in self.children(c.id)]}
        return [node(c) for c in self.children(None)]

    def __len__(self) -> int:
        return len(self._by_id)
