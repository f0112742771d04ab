"""Configuration as data: every YAML file under config/ and ivr_flows/, validated into typed models
by one loader (loader.py). Models are split by the file they describe; import them from here."""
from core.config.base import PROVINCE, REPO_ROOT, ConfigError, Strict, deep_merge, read_yaml, validate
from core.config.loader import HotlineConfig, load_config, load_model_catalogue
from core.config.model_catalogue import CatalogueModel, ModelCatalogue
from core.config.people import Agent, City, Interpreter, Names, ProvincePool, Supervisor, Wallboard
from core.config.routing_file import RoutingFile, WorkflowStep
from core.config.services import (HANDOFF_FIELDS, PERSONAL, Center, CentersFile, KeywordsFile, LegalAidRules,
                                  Matter, Partner, PartnersFile, SipTrunk, TicketRules, Topic)
from core.config.system import AlarmThresholds, SystemFile
from core.config.services import Office, OfficesFile

__all__ = [
    "PROVINCE", "REPO_ROOT", "ConfigError", "Strict", "deep_merge", "read_yaml", "validate",
    "HotlineConfig", "load_config", "load_model_catalogue", "CatalogueModel", "ModelCatalogue",
    "Agent", "City", "Interpreter", "Names", "ProvincePool", "Supervisor", "Wallboard",
    "RoutingFile", "WorkflowStep",
    "HANDOFF_FIELDS", "PERSONAL", "Center", "CentersFile", "KeywordsFile", "LegalAidRules", "Matter", "Partner",
    "PartnersFile", "SipTrunk", "TicketRules", "Topic",
    "AlarmThresholds", "SystemFile",
    "Office", "OfficesFile",
]
