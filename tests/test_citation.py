"""LICENSE and CITATION.cff: present, consistent with pyproject.toml, and CITATION.cff shaped as the
Citation File Format 1.2.0 asks for the fields used here (a hand-written subset of its schema, checked
with jsonschema; the full check is `cffconvert --validate`, which needs jsonschema<4 and so lives
outside the locked environment: see the README's last section)."""
from __future__ import annotations

import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

PERSON = {"type": "object", "additionalProperties": False,
          "properties": {"family-names": {"type": "string", "minLength": 1},
                         "given-names": {"type": "string", "minLength": 1}},
          "required": ["family-names"]}
ENTITY = {"type": "object", "additionalProperties": False,
          "properties": {"name": {"type": "string", "minLength": 1}}, "required": ["name"]}
AUTHORS = {"type": "array", "minItems": 1, "items": {"anyOf": [PERSON, ENTITY]}}
DOI = {"type": "string", "pattern": r"^10\.\d{4,9}(\.\d+)?/[A-Za-z0-9:/_;\-\.\(\)\[\]\\]+$"}
REFERENCE = {"type": "object",
             "properties": {"type": {"enum": ["conference-paper", "article", "software"]},
                            "title": {"type": "string", "minLength": 1}, "authors": AUTHORS,
                            "year": {"type": "integer"}, "month": {"type": "integer", "minimum": 1, "maximum": 12},
                            "doi": DOI, "collection-title": {"type": "string"},
                            "conference": {"type": "object", "required": ["name"]},
                            "repository-code": {"type": "string", "pattern": "^https://"}},
             "required": ["type", "title", "authors"]}
CFF_SUBSET = {"type": "object",
              "properties": {"cff-version": {"const": "1.2.0"}, "message": {"type": "string", "minLength": 1},
                             "title": {"type": "string", "minLength": 1}, "type": {"enum": ["software", "dataset"]},
                             "authors": AUTHORS, "version": {"type": "string"},
                             "license": {"type": "string"}, "keywords": {"type": "array", "items": {"type": "string"}},
                             "abstract": {"type": "string"}, "preferred-citation": REFERENCE,
                             "references": {"type": "array", "items": REFERENCE}},
              "required": ["cff-version", "message", "title", "authors"]}


@pytest.fixture(scope="module")
def citation() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def test_citation_has_the_cff_shape(citation):
    jsonschema.validate(citation, CFF_SUBSET)


def test_citation_names_the_rog_paper(citation):
    paper = citation["preferred-citation"]
    assert paper["title"] == "Reconciling Object-Level and Global-Level Objectives for Long-Tail Detection"
    assert [a["family-names"] for a in paper["authors"]] == ["Zhang", "Chen", "Peng"]
    assert paper["year"] == 2023 and "ICCV" in paper["conference"]["name"]


def test_subset_schema_rejects_what_cff_rejects(citation):
    for broken in ({**citation, "cff-version": "1.1.0"}, {**citation, "authors": []},
                   {**citation, "preferred-citation": {**citation["preferred-citation"], "doi": "ICCV2023"}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, CFF_SUBSET)


def test_licence_and_version_agree_with_pyproject(citation):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == citation["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n\nCopyright (c) ")
    assert project["version"] == citation["version"]
