"""The package version (a leaf module: the REST client reads it without importing the
package root, which imports everything)."""

__version__ = "0.1.0"
