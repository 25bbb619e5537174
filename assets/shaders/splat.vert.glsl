#version 330
// Pass 2 of a splat frame: one screen-space ellipse per Gaussian, instances sorted back to front. The
// per-Gaussian numbers come from pass 1 (splat.project.frag.glsl), so a vertex only reads three
// texels: quads (4 vertices, the box of every pixel where alpha >= 1/255), or with u_points one
// point sprite of the box's larger side (a quarter of the vertices: the moving preview's mode;
// sprites are capped at the implementation's largest point size).
uniform sampler2D u_screen;      // centre x, y; half extents x, y (negative: not drawn)
uniform sampler2D u_conic;
uniform sampler2D u_color;
uniform int u_tex_width;
uniform vec2 u_size;             // W, H in pixels
uniform bool u_points;

in uint a_index;                 // the stored Gaussian drawn by this instance
out vec2 v_offset;               // pixel offset from the centre (x right, y down); quads
flat out vec3 v_conic;
flat out vec4 v_color;           // rgb, opacity
flat out float v_side;           // point sprites: side in pixels

void main() {
    int i = int(a_index);
    ivec2 at = ivec2(i % u_tex_width, i / u_tex_width);
    vec4 screen = texelFetch(u_screen, at, 0);
    gl_PointSize = 1.0;
    if (screen.z < 0.0) {
        gl_Position = vec4(0.0, 0.0, 2.0, 1.0);         // outside the clip volume: nothing drawn
        return;
    }
    v_conic = texelFetch(u_conic, at, 0).xyz;
    v_color = texelFetch(u_color, at, 0);
    vec2 pixel = screen.xy;
    v_offset = vec2(0.0);
    v_side = 2.0 * max(screen.z, screen.w);
    if (u_points) {
        gl_PointSize = v_side;
    } else {
        vec2 corner = vec2(float(gl_VertexID & 1), float(gl_VertexID >> 1)) * 2.0 - 1.0;
        v_offset = corner * screen.zw;
        pixel += v_offset;
    }
    gl_Position = vec4(2.0 * pixel.x / u_size.x - 1.0, 1.0 - 2.0 * pixel.y / u_size.y, 0.0, 1.0);
}
