"""Publishing: GeoPackage / GeoParquet / GeoJSON writers, folium web maps and static maps."""
