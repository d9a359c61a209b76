"""Feature collections from Python, with the calls geoDB users know, answered as (Geo)DataFrames.

    >>> from cubeport.client import FeatureClient
    >>> geodb = FeatureClient("https://cubes.example.org", api_key="cpk_...")
    >>> geodb.get_my_collections("helcom")
    >>> gdf = geodb.get_collection("hotspots", database="helcom", query="status = 'active'", limit=50000)
    >>> geodb.insert_into_collection("hotspots", new_rows, database="helcom")

Queries are CQL2 text (`query`) and come back in CRS84; inserts are reprojected to the collection's CRS.
Long reads and writes go in pages and chunks, so a million features never travel in one request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

PAGE = 10_000  # the server's largest page


class FeatureClientError(Exception):
    """The server refused a request; the message is the server's explanation."""


class FeatureClient:
    def __init__(
        self,
        server: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        database: str | None = None,
        timeout: float = 120.0,
    ) -> None:
        """`database` is the default database of the calls that take one."""
        headers = {"X-API-Key": api_key} if api_key else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=server.rstrip("/") + "/features", headers=headers, timeout=timeout)
        self.database = database

    # -- collections ---------------------------------------------------------------------------------------
    def get_my_databases(self) -> list[dict[str, str]]:
        databases: list[dict[str, str]] = self._call("GET", "/databases")
        return databases

    def get_my_collections(self, database: str | None = None) -> Any:
        """The collections you may read (yours, shared with you, public) as a DataFrame."""
        import pandas as pd

        found = self._call("GET", "/collections", params={"database": database} if database else None)
        rows = [
            {
                "collection": c["id"].partition(".")[2],
                "database": c["id"].partition(".")[0],
                "title": c["title"],
                "owner": c.get("owner"),
            }
            for c in found["collections"]
        ]
        return pd.DataFrame(rows, columns=["collection", "database", "title", "owner"])

    def get_collection_info(self, name: str, database: str | None = None) -> dict[str, Any]:
        return self._object("GET", f"/collections/{self._id(name, database)}")

    def create_collection(
        self,
        name: str,
        properties: dict[str, str],
        database: str | None = None,
        *,
        crs: int | str = 4326,
        geometry_type: str = "Geometry",
        group: str | None = None,
        project: str | None = None,
        **metadata: Any,
    ) -> dict[str, Any]:
        """A new collection, private to you (or to your `group` or `project`, if the database is new);
        `metadata`: title, description, licence, keywords, provenance, metadata_url, time_property."""
        body = {
            "database": self._database(database),
            "name": name,
            "properties": properties,
            "crs": crs,
            "geometry_type": geometry_type,
            "group": group,
            "project": project,
            **metadata,
        }
        return self._object("POST", "/collections", json=body)

    def update_collection_metadata(
        self, name: str, database: str | None = None, **metadata: Any
    ) -> dict[str, Any]:
        """Change title, description, licence, keywords, provenance, metadata_url or time_property."""
        return self._object("PATCH", f"/collections/{self._id(name, database)}", json=metadata)

    def drop_collection(self, name: str, database: str | None = None) -> None:
        self._call("DELETE", f"/collections/{self._id(name, database)}")

    def rename_collection(self, name: str, new_name: str, database: str | None = None) -> dict[str, Any]:
        return self._object(
            "POST", f"/collections/{self._id(name, database)}/rename", json={"name": new_name}
        )

    def copy_collection(
        self, name: str, new_name: str, database: str | None = None, new_database: str | None = None
    ) -> dict[str, Any]:
        return self._object(
            "POST",
            f"/collections/{self._id(name, database)}/copy",
            json={"database": new_database or self._database(database), "name": new_name},
        )

    # -- features --------------------------------------------------------------------------------------------
    def get_collection(
        self,
        name: str,
        database: str | None = None,
        query: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        sortby: str | None = None,
        properties: list[str] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        bbox_crs: int | None = None,
        datetime: str | None = None,
    ) -> Any:
        """The features (those matching the CQL2 `query`, bbox and datetime) as a GeoDataFrame indexed by id."""
        import geopandas

        params: dict[str, Any] = {
            "filter": query,
            "sortby": sortby,
            "datetime": datetime,
            "properties": ",".join(properties) if properties is not None else None,
        }
        if bbox is not None:
            params["bbox"] = ",".join(map(str, bbox))
            if bbox_crs is not None and bbox_crs != 4326:
                params["bbox-crs"] = f"http://www.opengis.net/def/crs/EPSG/0/{bbox_crs}"
        features = list(
            self._pages(
                self._id(name, database), {k: v for k, v in params.items() if v is not None}, limit, offset
            )
        )
        frame = (
            geopandas.GeoDataFrame.from_features(features, crs="EPSG:4326")
            if features
            else geopandas.GeoDataFrame({"geometry": []}, geometry="geometry", crs="EPSG:4326")
        )
        frame.index = [f["id"] for f in features]
        frame.index.name = "id"
        return frame

    def get_collection_by_bbox(
        self,
        name: str,
        bbox: tuple[float, float, float, float],
        database: str | None = None,
        *,
        bbox_crs: int = 4326,
        query: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Any:
        return self.get_collection(
            name, database, query, bbox=bbox, bbox_crs=bbox_crs, limit=limit, offset=offset
        )

    def count_collection_rows(
        self, name: str, database: str | None = None, query: str | None = None, *, exact: bool = True
    ) -> int:
        """How many features (those meeting the CQL2 `query`); `exact=False` asks for the quick estimate."""
        params = {"exact": str(exact).lower(), **({"filter": query} if query else {})}
        return int(
            self._call("GET", f"/collections/{self._id(name, database)}/count", params=params)["count"]
        )

    def insert_into_collection(
        self, name: str, values: Any, database: str | None = None, *, upsert: bool = False, chunk: int = 5_000
    ) -> int:
        """Add the rows of a GeoDataFrame (reprojected to the collection's CRS); with `upsert`, rows whose
        index is an existing id replace that feature. Returns how many were written."""
        import json

        collection = self._id(name, database)
        crs = int(self.get_collection_info(name, database)["storageCrs"].rsplit("/", 1)[1])
        if values.crs is not None and values.crs.to_epsg() != crs:
            values = values.to_crs(crs)
        written = 0
        for start in range(0, len(values), chunk):
            part = json.loads(
                values.iloc[start : start + chunk].to_json(drop_id=not upsert, na="null", to_wgs84=False)
            )
            written += int(
                self._call(
                    "POST",
                    f"/collections/{collection}/items",
                    json=part,
                    params={"upsert": "true"} if upsert else None,
                )["written"]
            )
        return written

    def update_collection(
        self, name: str, values: dict[str, Any], query: str, database: str | None = None
    ) -> int:
        """Set properties of the features matching the CQL2 `query`; returns how many changed."""
        return int(
            self._call(
                "PATCH",
                f"/collections/{self._id(name, database)}/items",
                params={"filter": query},
                json={"properties": values},
            )["updated"]
        )

    def delete_from_collection(self, name: str, query: str, database: str | None = None) -> int:
        items = f"/collections/{self._id(name, database)}/items"
        return int(self._call("DELETE", items, params={"filter": query})["deleted"])

    def export_collection(
        self,
        name: str,
        path: str | Path,
        database: str | None = None,
        *,
        format: str | None = None,
        query: str | None = None,
    ) -> Path:  # noqa: A002
        """Write the collection (or the features matching `query`) to a GeoJSON, GeoPackage or GeoParquet file."""
        path = Path(path)
        format = format or {".gpkg": "gpkg", ".parquet": "parquet"}.get(path.suffix, "geojson")
        params = {"format": format, **({"filter": query} if query else {})}
        with self.http.stream(
            "GET", f"/collections/{self._id(name, database)}/export", params=params
        ) as response:
            if response.is_error:
                response.read()
                self._raise(response)
            partial = path.with_name(path.name + ".part")
            with partial.open("wb") as file:
                for block in response.iter_bytes():
                    file.write(block)
            partial.replace(path)
        return path

    # -- sharing -------------------------------------------------------------------------------------------
    def publish_collection(self, name: str, database: str | None = None) -> dict[str, Any]:
        return self._object("PUT", f"/collections/{self._id(name, database)}/access", json={"public": True})

    def unpublish_collection(self, name: str, database: str | None = None) -> dict[str, Any]:
        return self._object("PUT", f"/collections/{self._id(name, database)}/access", json={"public": False})

    def grant_access(
        self,
        name: str,
        *,
        user: str | None = None,
        group: str | None = None,
        project: str | None = None,
        permission: str = "read",
        database: str | None = None,
    ) -> dict[str, Any]:
        """Let one user, group or project read (or, with permission="write", also change) the collection."""
        subject_type, subject = _subject(user=user, group=group, project=project)
        return self._object(
            "POST",
            f"/collections/{self._id(name, database)}/access/grants",
            json={"subject_type": subject_type, "subject": subject, "permission": permission},
        )

    def revoke_access(
        self,
        name: str,
        *,
        user: str | None = None,
        group: str | None = None,
        project: str | None = None,
        database: str | None = None,
    ) -> dict[str, Any]:
        subject_type, subject = _subject(user=user, group=group, project=project)
        return self._object(
            "DELETE", f"/collections/{self._id(name, database)}/access/grants/{subject_type}/{subject}"
        )

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _pages(
        self, collection: str, params: dict[str, Any], limit: int | None, offset: int
    ) -> Iterator[dict[str, Any]]:
        left = limit
        while left is None or left > 0:
            size = PAGE if left is None else min(PAGE, left)
            page = self._call(
                "GET", f"/collections/{collection}/items", params={**params, "limit": size, "offset": offset}
            )
            yield from page["features"]
            offset += len(page["features"])
            left = None if left is None else left - len(page["features"])
            if len(page["features"]) < size:
                return

    def _database(self, database: str | None) -> str:
        database = database or self.database
        if not database:
            raise ValueError("give a database, or FeatureClient(..., database=...)")
        return database

    def _id(self, name: str, database: str | None) -> str:
        return f"{self._database(database)}.{name}"

    def _call(self, method: str, path: str, **options: Any) -> Any:
        """The server's JSON answer, or FeatureClientError."""
        response = self.http.request(method, path, **options)
        if response.is_error:
            self._raise(response)
        return response.json()

    def _object(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        """`_call` for the routes that answer a JSON object."""
        answer: dict[str, Any] = self._call(method, path, **options)
        return answer

    @staticmethod
    def _raise(response: httpx.Response) -> None:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise FeatureClientError(f"{response.status_code}: {detail}")


def _subject(**named: str | None) -> tuple[str, str]:
    """The one (subject type, name) given as user=, group= or project=."""
    given = [(kind, name) for kind, name in named.items() if name]
    if len(given) != 1:
        raise ValueError("name exactly one of user, group or project")
    return given[0]
